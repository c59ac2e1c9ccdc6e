"""The coordinator under load and a Redis outage, on loopback: does one tenant's load slow another's
cheap calls, does every WatchJob stream get its job's last event, does a job outlive a Redis restart?

A real coordinator (`gbair serve`, local backend, one torch thread) on a real redis-server (append-only
file, fsync on every write, so a SIGKILL loses nothing Redis acknowledged). Tenant a runs a reference
job; tenant b a small job of its own. Then, from tenant b, GetJob and ListJobs latency, a call every
PAUSE_S, in three phases:

- idle: nothing else runs;
- streams: tenant a holds `--streams` WatchJob streams on a job that trains meanwhile;
- loaded: the same, plus `--explainers` callers of tenant a, each calling ExplainExample on the
  reference job over and over, the callers spread over its rounds (a refused call, RESOURCE_EXHAUSTED,
  is retried after RETRY_S; any other error ends that caller and is reported).

The streams and explain callers run in a second process, so the prober's own client is not slowed by
theirs. Then the streamed job is cancelled and each stream should end with that last event. Last, the
Redis kill: tenant a submits the reference job's spec again, redis-server is SIGKILLed halfway through
the time the reference job took and started again RESTART_AFTER_S later; recovery is the time from Redis being
back to the job's next event, and the job counts as recovered when it succeeds with the reference
job's report (timings aside) and every job and data set is still listed.

    PYTHONPATH=services python -m benchmarks.service_load --quick --json /tmp/service-load.json
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import grpc
import redis
from rich.console import Console
from rich.table import Table

from benchmarks.common import machine, run_main, write_json
from gbair.client import GbairClient
from gbair.coordinator.embedded_redis import redis_server_binary
from gbair.coordinator.local import LocalCoordinator, free_port
from gbair.coordinator.store import Store
from gbair.core.config import DEFAULT_MODEL
from gbair.v1 import gbair_pb2 as pb
from gbair.v1 import gbair_pb2_grpc

TOKEN_A = "service-load-tenant-a-0123456789"
TOKEN_B = "service-load-tenant-b-0123456789"
PREFIX = "service-load"
PAUSE_S = 0.02
RETRY_S = 0.05
RESTART_AFTER_S = 2.0
TERMINAL = {pb.SUCCEEDED, pb.FAILED, pb.CANCELLED}
WORDS = {
    "pos": ["a joy to watch", "warm and funny", "a superb cast", "moving and smart", "great fun", "lovely score"],
    "neg": ["a dull mess", "tedious and flat", "badly acted", "a boring script", "awful pacing", "weak and silly"],
}


@dataclass(frozen=True)
class LoadPlan:
    """What the load process does, all as tenant a."""

    target: str
    token: str
    stream_job_id: str
    streams: int
    explain_job_id: str
    explain_rounds: int
    explain_examples: list[str]
    explainers: int
    timeout_s: float


class RedisServer:
    """redis-server on a loopback port that keeps its data in `folder` across a SIGKILL."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--logfile", str(self.folder / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_timeout=1)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.ping()
                return self
            except redis.RedisError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start; see {self.folder / 'redis.log'}") from None
                time.sleep(0.05)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def write_reviews(folder: Path, prefix: str, count: int) -> Path:
    """`count` labelled one-line film reviews, half of each label, as an upload's CSV file."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{prefix}.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "label"])
        for i in range(count):
            label = "pos" if i % 2 else "neg"
            writer.writerow([f"{prefix}{i}", f"{WORDS[label][i % 6]}, take {i}", label])
    return path


def percentiles(latencies_ms: list[float]) -> dict[str, float]:
    ordered = sorted(latencies_ms)
    return {
        "p50_ms": statistics.median(ordered),
        "p99_ms": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))],
        "max_ms": ordered[-1],
        "calls": len(ordered),
    }


def probe(client: GbairClient, job_id: str, calls: int) -> dict[str, dict[str, float]]:
    """Tenant b's GetJob and ListJobs, alternating, one every PAUSE_S."""
    latencies: dict[str, list[float]] = {"GetJob": [], "ListJobs": []}
    for k in range(calls):
        name = "GetJob" if k % 2 == 0 else "ListJobs"
        started = time.perf_counter()
        if name == "GetJob":
            client.get_job(job_id)
        else:
            client.list_jobs()
        latencies[name].append((time.perf_counter() - started) * 1000)
        time.sleep(PAUSE_S)
    return {name: percentiles(values) for name, values in latencies.items()}


def wait_for(client: GbairClient, job_id: str, done, timeout_s: float) -> pb.Job:
    """Poll the job until `done(job)`; raise after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = client.get_job(job_id)
        if done(job):
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} is still {pb.JobStatus.Name(job.status)} after {timeout_s:.0f} s")
        time.sleep(0.2)


# --- the load process ----------------------------------------------------------------------------------


def run_load(plan: LoadPlan, control: Connection) -> None:
    """Open the streams, report; on "explain" start the explain callers, on "stop" stop them and report;
    then report how each stream ended."""
    asyncio.run(_load(plan, control))


async def _load(plan: LoadPlan, control: Connection) -> None:
    loop = asyncio.get_running_loop()
    metadata = (("authorization", f"Bearer {plan.token}"),)
    async with grpc.aio.insecure_channel(plan.target) as channel:
        stub = gbair_pb2_grpc.GbairStub(channel)
        opened = [asyncio.Event() for _ in range(plan.streams)]

        async def watch(k: int) -> dict[str, Any]:
            phases: list[str] = []
            try:
                async for event in stub.WatchJob(pb.WatchJobRequest(job_id=plan.stream_job_id), metadata=metadata):
                    phases.append(event.phase)
                    opened[k].set()
                return {"events": len(phases), "last": phases[-1] if phases else "", "error": ""}
            except grpc.aio.AioRpcError as error:
                return {"events": len(phases), "last": phases[-1] if phases else "", "error": error.code().name}
            finally:
                opened[k].set()

        watchers = [asyncio.create_task(watch(k)) for k in range(plan.streams)]
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in opened)), plan.timeout_s)
        control.send(("streams_open", sum(1 for w in watchers if not w.done())))

        assert await loop.run_in_executor(None, control.recv) == "explain"
        stopping = asyncio.Event()
        answered: list[float] = []
        refused = [0]
        errors: list[str] = []

        async def explain(k: int) -> None:
            round_index = k % plan.explain_rounds
            example = plan.explain_examples[k % len(plan.explain_examples)]
            request = pb.ExplainExampleRequest(job_id=plan.explain_job_id, example_id=example, top=5, round=round_index)
            while not stopping.is_set():
                started = time.perf_counter()
                try:
                    await stub.ExplainExample(request, metadata=metadata, timeout=plan.timeout_s)
                    answered.append((time.perf_counter() - started) * 1000)
                except grpc.aio.AioRpcError as error:
                    if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                        errors.append(f"{error.code().name}: {error.details()}")
                        return
                    refused[0] += 1
                    await asyncio.sleep(RETRY_S)

        explainers = [asyncio.create_task(explain(k)) for k in range(plan.explainers)]
        assert await loop.run_in_executor(None, control.recv) == "stop"
        stopping.set()
        await asyncio.gather(*explainers)
        control.send(("explained", {
            "answered": len(answered), "refused": refused[0], "errors": errors,
            "latency": percentiles(answered) if answered else None,
        }))
        ends = await asyncio.wait_for(asyncio.gather(*watchers), plan.timeout_s)
        control.send(("streams_ended", ends))


def expect(control: Connection, what: str, timeout_s: float) -> Any:
    if not control.poll(timeout_s):
        raise TimeoutError(f"the load process sent no '{what}' in {timeout_s:.0f} s")
    name, value = control.recv()
    if name != what:
        raise RuntimeError(f"the load process sent '{name}', expected '{what}'")
    return value


# --- the Redis restart ---------------------------------------------------------------------------------


def comparable(report_json: str) -> dict:
    """A report without its timings, which differ between any two runs."""
    report = json.loads(report_json)
    for round_report in report["rounds"]:
        round_report.pop("timings", None)
    return report


def run_seconds(job: pb.Job) -> float:
    return (datetime.fromisoformat(job.updated_at) - datetime.fromisoformat(job.created_at)).total_seconds()


def redis_restart(server: RedisServer, a: GbairClient, reference: pb.Job, dataset_id: str, timeout_s: float) -> dict:
    listed_before = (sorted(j.job_id for j in a.list_jobs()), sorted(d.dataset_id for d in a.list_datasets()))
    job = a.submit(pb.JobSpec(dataset_id=dataset_id, corrupt=0.25, seed=1))
    wait_for(a, job.job_id, lambda j: j.status != pb.QUEUED, timeout_s)
    # Mid-job: halfway through the time the same job took uninterrupted.
    time.sleep(run_seconds(reference) / 2)
    if a.get_job(job.job_id).status in TERMINAL:
        raise RuntimeError(f"job {job.job_id} ended before the Redis kill; the kill would test nothing")
    direct = redis.Redis.from_url(server.url, decode_responses=True)
    events_key = Store(direct, PREFIX).events_key(job.job_id)
    server.kill()
    time.sleep(RESTART_AFTER_S)
    server.start()
    back = time.monotonic()
    events_at_restart = direct.xlen(events_key)
    outcome: dict[str, Any] = {"redis_restart_recovered": False, "redis_restart_recovery_s": timeout_s, "notes": []}
    progressed = None
    deadline = back + timeout_s
    while time.monotonic() < deadline:
        if progressed is None and direct.xlen(events_key) > events_at_restart:
            progressed = time.monotonic() - back
        try:
            finished = a.get_job(job.job_id)
        except grpc.RpcError as error:
            note = f"GetJob after the restart: {error.code().name} {error.details()}"
            if note not in outcome["notes"]:
                outcome["notes"].append(note)
            finished = None
        if finished is not None and finished.status in TERMINAL:
            break
        time.sleep(0.5)
    else:
        outcome["notes"].append(f"job {job.job_id} did not finish in {timeout_s:.0f} s after Redis came back")
        finished = None
    direct.close()
    if finished is None:
        return outcome
    same_report = finished.status == pb.SUCCEEDED and comparable(finished.report_json) == comparable(reference.report_json)
    listed_after = (sorted(j.job_id for j in a.list_jobs()), sorted(d.dataset_id for d in a.list_datasets()))
    nothing_lost = listed_after == (sorted([*listed_before[0], job.job_id]), listed_before[1])
    outcome.update({
        "redis_restart_job_status": pb.JobStatus.Name(finished.status),
        "redis_restart_same_report": same_report,
        "redis_restart_nothing_lost": nothing_lost,
        "redis_restart_recovered": same_report and nothing_lost and progressed is not None,
        "redis_restart_recovery_s": progressed if progressed is not None else timeout_s,
    })
    if finished.status != pb.SUCCEEDED:
        outcome["notes"].append(f"job ended {pb.JobStatus.Name(finished.status)}: {finished.error}")
    return outcome


# --- the run -------------------------------------------------------------------------------------------


def coordinator_settings(redis_url: str, model: str, streams: int, heavy_workers: int) -> dict:
    return {
        "redis_url": redis_url,
        "redis_prefix": PREFIX,
        "tokens": [{"token": TOKEN_A, "tenant": "a"}, {"token": TOKEN_B, "tenant": "b"}],
        "models": [model],
        "backend": "local",
        "torch_threads": 1,
        "max_watch_streams_per_tenant": streams,
        "heavy_workers": heavy_workers,
        "job_defaults": {
            "model": {"num_virtual_tokens": 8, "max_length": 32},
            "train": {"epochs": 1, "batch_size": 8, "learning_rate": 0.03},
            "recovery": {"rounds": 1, "budget": 4},
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer probe calls and smaller data: a few minutes")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="a model name or folder the coordinator offers")
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--explainers", type=int, default=8)
    parser.add_argument("--probe-calls", type=int, help="tenant b's calls per phase (default 400, --quick 200)")
    parser.add_argument("--train-size", type=int, help="training examples per job (default 128, --quick 48)")
    parser.add_argument("--heavy-workers", type=int, default=1, help="the coordinator's heavy_workers setting")
    parser.add_argument("--timeout", type=float, help="seconds any one wait may take (default 600, --quick 240)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--state-dir", type=Path, help="default: a temporary folder, removed afterwards")
    args = parser.parse_args(argv)
    probe_calls = args.probe_calls or (200 if args.quick else 400)
    args.timeout = args.timeout or (240.0 if args.quick else 600.0)
    train_size = args.train_size or (48 if args.quick else 128)
    console = Console()
    with tempfile.TemporaryDirectory(prefix="gbair-service-load-") as scratch:
        state = args.state_dir or Path(scratch)
        result = run(args, state, probe_calls, train_size, console)
    result["machine"] = machine()
    show(result, console)
    if args.json is not None:
        write_json(result, args.json)
        console.print(f"written to {args.json}")
    return 0


def run(args, state: Path, probe_calls: int, train_size: int, console: Console) -> dict:
    started = time.monotonic()
    load_average_before = os.getloadavg()
    server = RedisServer(state / "redis").start()
    settings = coordinator_settings(server.url, args.model, args.streams, args.heavy_workers)
    data = state / "data"
    files = {split: write_reviews(data, prefix, size) for split, prefix, size in
             (("train", "t", train_size), ("validation", "v", max(16, train_size // 4)))}
    try:
        with LocalCoordinator(state / "coordinator", settings) as coordinator, \
                GbairClient(coordinator.target, TOKEN_A, timeout_s=args.timeout) as a, \
                GbairClient(coordinator.target, TOKEN_B, timeout_s=args.timeout) as b:
            console.print(f"coordinator on {coordinator.target}, redis on {server.url}, model {args.model}")
            dataset_a = a.upload_dataset("reviews", files["train"], files["validation"])
            dataset_b = b.upload_dataset("reviews", files["train"], files["validation"])
            reference = a.submit(pb.JobSpec(dataset_id=dataset_a.dataset_id, corrupt=0.25, seed=1))
            job_b = b.submit(pb.JobSpec(dataset_id=dataset_b.dataset_id))
            reference = wait_for(a, reference.job_id, lambda j: j.status in TERMINAL, args.timeout)
            job_b = wait_for(b, job_b.job_id, lambda j: j.status in TERMINAL, args.timeout)
            if reference.status != pb.SUCCEEDED:
                raise RuntimeError(f"the reference job ended {pb.JobStatus.Name(reference.status)}: {reference.error}")
            console.print(f"reference job done at {time.monotonic() - started:.0f} s")

            phases = {"idle": probe(b, job_b.job_id, probe_calls)}
            streamed = a.submit(pb.JobSpec(dataset_id=dataset_a.dataset_id, epochs=1000, rounds=1))
            plan = LoadPlan(
                coordinator.target, TOKEN_A, streamed.job_id, args.streams, reference.job_id, len(reference.rounds),
                [f"v{i}" for i in range(8)], args.explainers, args.timeout,
            )
            control, child_end = multiprocessing.get_context("spawn").Pipe()
            load = multiprocessing.get_context("spawn").Process(target=run_load, args=(plan, child_end), daemon=True)
            load.start()
            try:
                streams_open = expect(control, "streams_open", args.timeout)
                phases["streams"] = probe(b, job_b.job_id, probe_calls)
                control.send("explain")
                phases["loaded"] = probe(b, job_b.job_id, probe_calls)
                control.send("stop")
                explained = expect(control, "explained", args.timeout)
                a.cancel(streamed.job_id)
                ends = expect(control, "streams_ended", args.timeout)
            finally:
                load.join(timeout=30)
                if load.is_alive():
                    load.kill()
            console.print(f"load phases done at {time.monotonic() - started:.0f} s")
            restart = redis_restart(server, a, reference, dataset_a.dataset_id, args.timeout)
    finally:
        server.stop()
    return {
        "idle_p99_ms": phases["idle"]["GetJob"]["p99_ms"],
        "loaded_p99_ms": phases["loaded"]["GetJob"]["p99_ms"],
        "streams": args.streams,
        "streams_open": streams_open,
        "streams_completed": sum(1 for end in ends if end["last"] == "cancelled" and not end["error"]),
        "stream_errors": sorted({end["error"] for end in ends if end["error"]}),
        **restart,
        "phases": phases,
        "explain": explained,
        "load_average_before": load_average_before,
        "settings": {"model": args.model, "explainers": args.explainers, "heavy_workers": args.heavy_workers, "probe_calls": probe_calls,
                     "train_size": train_size, "pause_s": PAUSE_S, "quick": args.quick},
        "wall_s": time.monotonic() - started,
    }


def show(result: dict, console: Console) -> None:
    table = Table(title=f"tenant b's latency (ms), {result['streams']} streams and {result['settings']['explainers']} "
                        f"explain callers of tenant a when loaded")
    for column in ("phase", "call", "p50", "p99", "max", "calls"):
        table.add_column(column, justify="left" if column in ("phase", "call") else "right")
    for phase, calls in result["phases"].items():
        for name, figures in calls.items():
            table.add_row(phase, name, f"{figures['p50_ms']:.1f}", f"{figures['p99_ms']:.1f}", f"{figures['max_ms']:.1f}",
                          str(figures["calls"]))
    console.print(table)
    explain = result["explain"]
    latency = explain["latency"]
    console.print(f"explain: {explain['answered']} answered"
                  + (f" (p50 {latency['p50_ms']:.0f} ms, p99 {latency['p99_ms']:.0f} ms)" if latency else "")
                  + f", {explain['refused']} refused at the tenant cap, errors: {explain['errors'] or 'none'}")
    console.print(f"streams: {result['streams_completed']} of {result['streams']} got the last event"
                  f" (open at once: {result['streams_open']}; errors: {result['stream_errors'] or 'none'})")
    console.print(f"redis restart: recovered {result['redis_restart_recovered']}, "
                  f"{result['redis_restart_recovery_s']:.1f} s to the job's next event; {result['notes'] or ''}")


if __name__ == "__main__":
    raise SystemExit(run_main(main))
