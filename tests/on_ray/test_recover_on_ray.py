"""`gbair recover --ray` on the session's cluster with the real MiniLM: the same report as a single-process
run, with one training worker the same round-0 suspects, and no checkpoints left behind."""

import json

import pytest

from gbair.cli import main
from labeled_files import rows, write_csv


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("recover-data")
    return [
        "--data", str(write_csv(folder / "train.csv", rows("t", 48))),
        "--val-data", str(write_csv(folder / "val.csv", rows("v", 16))),
        "--corrupt", "0.25", "--rounds", "1", "--budget", "6", "--epochs", "2", "--virtual-tokens", "4", "--seed", "1",
    ]


def test_recover_on_ray_flags_what_the_single_process_run_flags(ray_cluster, data, tmp_path):
    assert main(["recover", *data, "--out", str(tmp_path / "local")]) == 0
    assert main(["recover", *data, "--ray", "--out", str(tmp_path / "ray")]) == 0

    local, on_ray = (json.loads((tmp_path / run / "report.json").read_text()) for run in ("local", "ray"))
    assert set(on_ray) == set(local)
    assert len(on_ray["rounds"]) == len(local["rounds"]) == 2
    assert on_ray["rounds"][0]["flagged_ids"] == local["rounds"][0]["flagged_ids"]
    assert len(on_ray["rounds"][0]["flagged_ids"]) == 6
    assert on_ray["rounds"][0]["val_accuracy"] == local["rounds"][0]["val_accuracy"]
    # Ray Train wrote each round's checkpoints under OUT/checkpoints, and each went once its round was scored.
    assert (tmp_path / "ray" / "checkpoints").is_dir()
    assert not list((tmp_path / "ray" / "checkpoints").iterdir())
    assert (tmp_path / "ray" / "adapter").is_dir() and (tmp_path / "ray" / "suspects.csv").is_file()

