"""No traceback for a user error. Each case runs `gbair` as a user does, in a process of its own, and
must exit with 2 and say what is wrong in exactly one line on stderr. The rule holds for argparse's usage
errors too: gbair prints them as one line without the usage, which `--help` shows."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gbair.coordinator.local import free_port
from labeled_files import rows, write_csv

CONNECTION = ["--target", "{target}", "--token", "{token}"]

# The arguments after `gbair`; {names} are filled in from `places` below.
CASES = {
    "no subcommand": [],
    "unknown subcommand": ["bogus"],
    "recover: unknown data file": ["recover", "--data", "{tmp}/missing.csv", "--out", "{tmp}/out"],
    "recover: setting out of range": ["recover", "--data", "{train}", "--epochs", "0", "--out", "{tmp}/out"],
    "recover: unknown model folder": ["recover", "--data", "{train}", "--model", "{tmp}/no-model", "--out", "{tmp}/out"],
    "recover: device this machine lacks": ["recover", "--data", "{train}", "--device", "cuda:7", "--out", "{tmp}/out"],
    "recover: output folder under a file": ["recover", "--data", "{train}", "--out", "{train}/out"],
    "serve: unknown config file": ["serve", "--config", "{tmp}/missing.yaml"],
    "serve: config that is not YAML": ["serve", "--config", "{not_yaml}"],
    "serve: no tokens": ["serve", "--listen", "127.0.0.1:0", "--state-dir", "{tmp}/state"],
    "serve: bad listen address": ["serve", "--config", "{settings}", "--listen", "127.0.0.1:99999"],
    "serve: address in use": ["serve", "--config", "{settings}", "--listen", "{target}"],
    "serve: unreachable redis": ["serve", "--config", "{settings}", "--listen", "127.0.0.1:0", "--redis-url", "redis://127.0.0.1:{closed_port}/0"],
    "recover: named set not on this machine": ["recover", "--data", "olid", "--data-dir", "{tmp}", "--out", "{tmp}/out"],
    "demo: named set not on this machine": ["demo", "--data", "sst2", "--data-dir", "{tmp}", "--backend", "local", "--out", "{tmp}/demo"],
    "submit: unknown data file": ["submit", "--data", "{tmp}/missing.csv", *CONNECTION],
    "submit: not a .csv or .jsonl file": ["submit", "--data", "{not_yaml}", *CONNECTION],
    "submit: malformed data file": ["submit", "--data", "{broken}", *CONNECTION],
    "submit: option value of the wrong type": ["submit", "--data", "{train}", "--rounds", "two", *CONNECTION],
    "submit: unknown method": ["submit", "--dataset-id", "d", "--method", "magic", *CONNECTION],
    "submit: unknown data set id": ["submit", "--dataset-id", "no-such-dataset", *CONNECTION],
    "submit: unreachable coordinator": ["submit", "--data", "{train}", "--target", "127.0.0.1:{closed_port}", "--token", "t"],
    "submit: bad token": ["submit", "--data", "{train}", "--target", "{target}", "--token", "not-a-token"],
    "submit: no token": ["submit", "--data", "{train}", "--target", "{target}"],
    "submit: missing TLS CA file": ["submit", "--data", "{train}", *CONNECTION, "--tls-ca", "{tmp}/missing.pem"],
    "watch: unknown job id": ["watch", "no-such-job", *CONNECTION],
    "watch: bad token": ["watch", "no-such-job", "--target", "{target}", "--token", "not-a-token"],
    "suspects: unknown job id": ["suspects", "no-such-job", *CONNECTION],
    "suspects: option value of the wrong type": ["suspects", "no-such-job", "--limit", "ten", *CONNECTION],
    "review: malformed --set-label": ["review", "no-such-job", "--set-label", "t17", *CONNECTION],
    "review: unknown job id": ["review", "no-such-job", "--accept", "t1", *CONNECTION],
    "export: unknown job id": ["export", "no-such-job", "--out", "{tmp}/export", *CONNECTION],
    "export: no --out": ["export", "no-such-job", *CONNECTION],
    "cancel: unknown job id": ["cancel", "no-such-job", *CONNECTION],
    "delete: no kind": ["delete"],
    "delete: unknown kind": ["delete", "model", "m1", *CONNECTION],
    "delete job: no job id": ["delete", "job", *CONNECTION],
    "delete job: unknown job id": ["delete", "job", "no-such-job", *CONNECTION],
    "delete job: bad token": ["delete", "job", "no-such-job", "--target", "{target}", "--token", "not-a-token"],
    "delete dataset: unknown data set id": ["delete", "dataset", "no-such-dataset", *CONNECTION],
    "delete dataset: no token": ["delete", "dataset", "no-such-dataset", "--target", "{target}"],
    "data: no action": ["data"],
    "data: unknown set to fetch": ["data", "fetch", "imagenet", "--dir", "{tmp}/fetched"],
    "data: mirror unreachable": ["data", "fetch", "sst2", "--dir", "{tmp}/fetched", "--mirror", "http://127.0.0.1:{closed_port}"],
}


@pytest.fixture(scope="module")
def places(tmp_path_factory, live_coordinator) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("bad-input")
    broken = rows("t", 8)
    broken[3]["text"] = ""
    (folder / "not-yaml.yaml").write_text("listen: [\n")
    (folder / "settings.yaml").write_text("tokens: [{token: a-token-of-sixteen-chars, tenant: t}]\nbackend: local\n")
    return {
        "tmp": str(folder),
        "train": str(write_csv(folder / "train.csv", rows("t", 20))),
        "broken": str(write_csv(folder / "broken.csv", broken)),
        "not_yaml": str(folder / "not-yaml.yaml"),
        "settings": str(folder / "settings.yaml"),
        "target": live_coordinator.target,
        "token": live_coordinator.token,
        "closed_port": str(free_port()),
    }


@pytest.mark.parametrize("arguments", CASES.values(), ids=CASES.keys())
def test_a_user_error_is_one_line_on_stderr_with_exit_code_2(arguments, places):
    command = [sys.executable, "-m", "gbair.cli", *(a.format(**places) for a in arguments)]
    # The user's own GBAIR_* settings (a token, a data folder) and data sets fetched into their per-user
    # folder must not change the cases.
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GBAIR_")}
    environment["XDG_DATA_HOME"] = f"{places['tmp']}/user-data"
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.returncode == 2, result.stdout + result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("gbair")
