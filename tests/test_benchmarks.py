"""Both benchmark scripts end to end, as a user runs them, on the bundled DiaSafety with a tiny random backbone
(whose 128 positions cannot hold DiaSafety's longest inputs with the prompt, hence --max-length 64)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(module: str, *args: str) -> None:
    result = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


def test_recovery_benchmark_scores_every_method_from_the_same_checkpoints(tmp_path, tiny_model_dir):
    from benchmarks.recovery import METHODS

    out = tmp_path / "recovery"
    _run("benchmarks.recovery", "--datasets", "diasafety", "--corruption", "0.25", "--seeds", "0", "1",
         "--train-size", "32", "--val-size", "16", "--test-size", "16", "--epochs", "2", "--rounds", "1",
         "--folds", "2", "--model", str(tiny_model_dir), "--max-length", "64", "--out", str(out))
    run = json.loads((out / "recovery.json").read_text())
    cells = run["cells"]
    assert [(c["dataset"], c["corruption"], c["seed"]) for c in cells] == [("diasafety", 0.25, 0), ("diasafety", 0.25, 1)]
    for cell in cells:
        assert cell["flipped"] == 8 and cell["sizes"] == {"train": 32, "validation": 16, "test": 16}
        assert set(cell["methods"]) == set(METHODS)
        for metrics in cell["methods"].values():
            assert 0 <= metrics["auroc"] <= 1 and metrics["k"] == 3
            assert metrics["recall_at_k"] == pytest.approx(metrics["precision_at_k"] * 3 / 8)
            curve = np.array(metrics["flips_found_curve"])
            assert len(curve) == 101 and curve[0] == 0 and curve[-1] == 1 and np.all(np.diff(curve) >= 0)
        for action in ("remove", "relabel"):
            gbair = cell["gbair"][action]
            # G-BAIR's round 0 retrains on the same corrupted data from the same start: same model, same accuracy.
            assert gbair["rounds"][0]["test_accuracy"] == cell["accuracy"]["corrupted"]
            assert gbair["test_accuracy"] == gbair["rounds"][gbair["best_round"]]["test_accuracy"]
            clean, corrupted = cell["accuracy"]["clean"], cell["accuracy"]["corrupted"]
            if clean > corrupted:
                assert gbair["recovered_fraction"] == pytest.approx((gbair["test_accuracy"] - corrupted) / (clean - corrupted))
    summary = run["summary"][0]
    for method in METHODS:
        assert summary["methods"][method]["auroc"]["n"] == 2
        assert summary["methods"][method]["auroc"]["mean"] == pytest.approx(np.mean([c["methods"][method]["auroc"] for c in cells]))
    table = (out / "recovery.md").read_text()
    assert all(f"`{method}`" in table for method in METHODS)
    for plot in ("flips-found-diasafety-p0.25.png", "accuracy-rounds-diasafety-p0.25.png"):
        assert (out / plot).stat().st_size > 1000


def test_influence_speed_benchmark_matches_captum_and_reports_throughput(tmp_path, tiny_model_dir):
    pytest.importorskip("captum")
    out, result = tmp_path / "speed", tmp_path / "speed.json"
    _run("benchmarks.influence_speed", "--data", "diasafety", "--model", str(tiny_model_dir), "--sizes", "16", "32", "--captum-sizes", "16",
         "--checkpoints", "2", "--checkpoint-counts", "1", "2", "--queries", "6", "--check-train", "8",
         "--check-queries", "4", "--captum-batch-sweep", "1", "4", "--sweep-size", "8", "--json", str(result), "--out", str(out))
    run = json.loads(result.read_text())
    for key in ("gbair_per_s", "captum_per_s", "epoch_per_s"):
        assert run[key] > 0
    assert run["max_rel_diff_vs_captum"] < 1e-4
    assert run["by_size"][0]["summed_rel_diff_vs_captum"] < 1e-4
    assert [row["size"] for row in run["by_size"]] == [16, 32]
    assert [row["checkpoints"] for row in run["by_checkpoints"]] == [1, 2]
    assert run["gbair_speedup_vs_captum"] == pytest.approx(run["gbair_per_s"] / run["captum_per_s"])
    assert [row["captum_batch_size"] for row in run["captum_batch_sweep"]] == [1, 4]
    assert "gbair_per_s" in (out / "influence-speed.md").read_text()
    for plot in ("influence-speed-by-size.png", "influence-speed-by-checkpoints.png"):
        assert (out / plot).stat().st_size > 1000
