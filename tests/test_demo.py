"""`gbair demo`, the README's run command, as a user runs it (on the bundled DiaSafety: 60 examples cannot
cover BANKING77's 77 classes): a separate process that starts its own coordinator and Redis, runs a job
through the gRPC API and writes its report; and SIGTERM stops all of it.
Rounds run in the coordinator process (`--backend local`); tests/on_ray covers the coordinator on Ray."""

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path


def _demo(out: Path, model_dir: Path, **popen) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "gbair.cli", "demo", "--out", str(out), "--model", str(model_dir),
        "--backend", "local", "--data", "diasafety", "--train-size", "60", "--val-size", "30", "--rounds", "1",
    ]
    # With the fault handler on, SIGABRT makes the demo and its coordinator print every thread's stack.
    environment = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment, **popen)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _processes_naming(path: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command_line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(path) in command_line:
                pids.append(int(entry.name))
    return pids


def test_demo_runs_a_job_through_the_service_and_writes_its_report(tmp_path, tiny_model_dir):
    out = tmp_path / "demo"
    demo = _demo(out, tiny_model_dir)
    output, _ = demo.communicate(timeout=600)
    assert demo.returncode == 0, output
    report = json.loads((out / "report.json").read_text())
    assert [r["round"] for r in report["rounds"]] == [0, 1]
    assert report["rounds"][0]["train_size"] == 60
    assert (out / "accuracy.png").read_bytes().startswith(b"\x89PNG")
    assert "submitted job" in output and "report:" in output
    # Each later round's line says whether the trusted set tells it from round 0.
    # The validation accuracy is the mean of the round's two trainings, shown with their range.
    val = r"val [\d.]+ \(mean of 2: [\d.]+-[\d.]+; model: training [12]\)"
    assert re.search(rf"^round 0: train 60, {val}, flagged \d+$", output, re.M), output
    assert re.search(rf"^round 1: train \d+, {val} \(p = [\d.e-]+ against round 0\), flagged \d+$", output, re.M), output
    # It ends with how to review the job in the browser.
    (job_id,) = re.findall(r"^submitted job (\S+)$", output, re.M)
    assert f"gbair serve --config {out / 'state' / 'coordinator.yaml'}" in output
    assert re.search(r"^  gbair web --target 127\.0\.0\.1:\d+$", output, re.M), output
    assert f"open http://127.0.0.1:8080/jobs/{job_id} " in output


def test_sigterm_stops_the_demo_with_its_coordinator_and_redis(tmp_path, tiny_model_dir):
    out = tmp_path / "demo"
    demo = _demo(out, tiny_model_dir)
    for line in demo.stdout:
        if line.startswith("submitted job"):
            break
    else:
        raise AssertionError(f"the demo ended before submitting, with {demo.wait()}")
    coordinators = _processes_naming(out / "state" / "coordinator.yaml")
    redis_pid = int((out / "state" / "redis" / "redis.pid").read_text())
    assert coordinators and _alive(redis_pid)

    demo.send_signal(signal.SIGTERM)
    try:
        returncode = demo.wait(timeout=120)
    except subprocess.TimeoutExpired:
        raise AssertionError(_stacks_of_a_hung_demo(demo, coordinators, out)) from None
    assert returncode == 128 + signal.SIGTERM
    assert not any(_alive(pid) for pid in [*coordinators, redis_pid])


def _stacks_of_a_hung_demo(demo: subprocess.Popen, coordinators: list[int], out: Path) -> str:
    for pid in [*coordinators, demo.pid]:
        if _alive(pid):
            os.kill(pid, signal.SIGABRT)
    output, _ = demo.communicate(timeout=30)
    coordinator_log = (out / "state" / "coordinator.log").read_text(errors="replace")
    return f"SIGTERM did not stop the demo in 120 s.\ndemo:\n{output}\ncoordinator log:\n{coordinator_log[-20000:]}"
