"""Both benchmark scripts end to end, as a user runs them, on the bundled DiaSafety with a tiny random backbone
(whose 128 positions cannot hold DiaSafety's longest inputs with the prompt, hence --max-length 64)."""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def _run(module: str, *args: str) -> None:
    result = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


def test_recovery_benchmark_grids_score_every_method_and_resume(tmp_path, tiny_model_dir):
    from benchmarks.common import write_json
    from benchmarks.recovery.cli import main
    from benchmarks.recovery.report import markdown, summarise
    from benchmarks.recovery.variants import CLAIRVOYANT, RANKED

    out = tmp_path / "recovery"
    args = ["--train-size-for", "convabuse=40", "--datasets", "diasafety", "--noise", "uniform", "class-conditional", "--corruption", "0.25",
            "--train-size", "32", "--val-size", "16", "--test-size", "16", "--epochs", "2", "--rounds", "2",
            "--folds", "2", "--knn-neighbours", "3", "--end-to-end", "diasafety:uniform",
            "--end-to-end-methods", "fused", "aum", "--model", str(tiny_model_dir), "--max-length", "64", "--out", str(out),
            "--stage-cache", str(tmp_path / "stages")]
    _run("benchmarks.recovery", *args, "--seeds", "0", "--grids", "ranking")
    run = json.loads((out / "recovery.json").read_text())
    cells = run["cells"]
    assert [c["key"] for c in cells] == [
        "ranking/diasafety/uniform/p0.25/seed0", "ranking/diasafety/class-conditional/p0.25/seed0"]
    for cell in cells:
        assert cell["sizes"] == {"train": 32, "validation": 16, "test": 16}
        # Uniform: a quarter of all 32; class-conditional: a quarter of the Unsafe examples only.
        assert cell["wrong_labels"] == 8 if cell["noise"] == "uniform" else 0 < cell["wrong_labels"] < 8
        assert set(cell["methods"]) == set(RANKED)
        for metrics in cell["methods"].values():
            assert 0 <= metrics["auroc"] <= 1 and metrics["k"] == 3
            assert metrics["recall_at_k"] == pytest.approx(metrics["precision_at_k"] * 3 / cell["wrong_labels"])
            curve = np.array(metrics["flips_found_curve"])
            assert len(curve) == 101 and curve[0] == 0 and curve[-1] == 1 and np.all(np.diff(curve) >= 0)
    summary = {s["noise"]: s for s in run["summary"]["ranking"]}
    for method in RANKED:
        assert summary["uniform"]["methods"][method]["auroc"]["mean"] == cells[0]["methods"][method]["auroc"]
    for cell in cells:
        assert summary[cell["noise"]]["class_conditional_marks"] == int(cell["class_conditional_marks"])
    table = (out / "recovery.md").read_text()
    assert "seeds 1, marks found at 0" in table or "seeds 1, marks found at 1" in table
    assert table.index("Ranking, uniform noise") < table.index("Ranking, class-conditional noise")
    assert all(f"`{method}`" in table for method in RANKED)
    assert (out / "flips-found-diasafety-class-conditional-p0.25.png").stat().st_size > 1000

    # Same settings, more cells: the finished ranking cells are kept; ConvAbuse's real noise (disputed rows)
    # and the end-to-end cell run (in this process, to spare a second start-up).
    assert main([*args, "--datasets", "diasafety", "convabuse", "--seeds", "0", "--grids", "ranking", "end-to-end"]) == 0
    run = json.loads((out / "recovery.json").read_text())
    assert run["cells"][:2] == cells and run["unfinished_cells"] == {} and not (out / "unfinished").exists()
    assert run["machine_at_start"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert [c["key"] for c in run["cells"][2:]] == [
        "ranking/convabuse/real/seed0", "end-to-end/diasafety/uniform/p0.25/seed0"]
    real = run["cells"][2]
    assert real["sizes"]["train"] == 40 and 0 < real["wrong_labels"] < 40
    assert set(real["methods"]) == set(RANKED) - {CLAIRVOYANT}
    cell = run["cells"][3]
    clean, noisy = cell["accuracy"]["clean"], cell["accuracy"]["noisy"]
    assert cell["k"] == 3 and list(cell["methods"]) == ["fused", "aum", "confident-learning"]
    # Cleanlab's workflow, flag once and retrain once, beside G-BAIR's flaggers: a one shot only.
    assert list(cell["methods"]["confident-learning"]) == ["one_shot"]
    assert cell["methods"]["confident-learning"]["one_shot"]["flagged"] == 6
    for method in (cell["methods"][name] for name in ("fused", "aum")):
        rounds, one_shot = method, method["one_shot"]
        # Round 0 is shared: both runs start from the noisy model and flag from its ranking.
        for key in ("train_size", "val_accuracy", "test_accuracy"):
            assert rounds["rounds"][0][key] == one_shot["rounds"][0][key]
        assert rounds["rounds"][0]["test_accuracy"] == noisy
        assert one_shot["flagged"] == 6 and len(one_shot["rounds"]) == 2
        assert rounds["flagged"] == sum(r["flagged"] for r in rounds["rounds"]) <= 6
        assert rounds["test_accuracy"] == rounds["rounds"][rounds["best_round"]]["test_accuracy"]
        assert one_shot["test_accuracy"] == one_shot["rounds"][1]["test_accuracy"]
        if clean > noisy:
            assert rounds["recovered_fraction"] == pytest.approx((rounds["test_accuracy"] - noisy) / (clean - noisy))
    assert cell["split_trusted_set"]["selection_fraction"] == 0.5
    table = (out / "recovery.md").read_text()
    assert table.index("Ranking, class-conditional") < table.index("Ranking, real noise: disputed rows")
    assert table.index("Ranking, real") < table.index("End to end") < table.index("Iterating")
    assert "2 rounds of 3 or one shot of 6" in table
    assert "| one shot, `aum` |" in table and "| one shot, `confident-learning` |" in table
    # A one-shot-only flagger has no G-BAIR row and no row in the iteration table.
    assert "G-BAIR, `confident-learning`" not in table
    # Recovered fractions exist only where the noise cost accuracy (ConvAbuse's majority labels need not).
    for clean_accuracy, shown in ((0.9, "| 1.00 |"), (0.4, "| – |")):
        moved = {**cell, "accuracy": {"clean": clean_accuracy, "noisy": 0.5}}
        lines = markdown(summarise([moved])).splitlines()
        assert next(line for line in lines if line.startswith("| clean labels")).endswith(shown)
    assert table.split("End to end")[1].count("`confident-learning`") == 1 and "| `aum` |" in table.split("Iterating")[1]

    # Two worker processes, from an empty stage cache, give the same rankings and recoveries.
    parallel = tmp_path / "parallel"
    assert main([*args, "--grids", "ranking", "end-to-end", "--seeds", "0", "--workers", "2", "--out", str(parallel),
                 "--stage-cache", str(tmp_path / "parallel-stages")]) == 0
    parallel_cells = json.loads((parallel / "recovery.json").read_text())["cells"]
    assert [c["key"] for c in parallel_cells] == [c["key"] for c in run["cells"] if "convabuse" not in c["key"]]
    # Clean, noisy and 2 fold models trained by the workers, 2 influence passes here; the class-conditional
    # cell's clean-label model is the uniform cell's.
    passes = [{"computed": 6, "from_cache": 0}, {"computed": 5, "from_cache": 1}]
    for serial, in_workers, expected in zip(cells, parallel_cells, passes):
        assert in_workers["accuracy"] == serial["accuracy"] and in_workers["methods"] == serial["methods"]
        assert in_workers["passes"] == expected and "trainings_in_workers" in in_workers["seconds"]
    in_workers = parallel_cells[-1]
    assert in_workers["workers"] == 2 and sum(in_workers["passes"].values()) == sum(cell["passes"].values())
    for key in ("accuracy", "methods", "split_trusted_set"):
        assert in_workers[key] == cell[key]

    # Seeds run apart merge into one summary; a cell finished in two of the grids cannot.
    with pytest.raises(SystemExit, match="more than one"):
        main(["--merge", str(out), str(parallel), "--out", str(tmp_path / "twice")])
    other_seed = tmp_path / "seed1"
    reseeded = json.loads((out / "recovery.json").read_text())
    for moved in reseeded["cells"]:
        moved["seed"], moved["key"] = 1, moved["key"].replace("seed0", "seed1")
        if moved["grid"] == "ranking":
            moved["methods"]["loss"]["auroc"] = 1.0
        else:  # this seed ran without cleanlab's one shot
            del moved["methods"]["confident-learning"]
    write_json(reseeded, other_seed / "recovery.json")
    merged = tmp_path / "merged"
    assert main(["--merge", str(out), str(other_seed), "--out", str(merged)]) == 0
    merged_summary = json.loads((merged / "recovery.json").read_text())["summary"]
    merged_table = (merged / "recovery.md").read_text()
    summary = merged_summary["ranking"][0]
    assert summary["seeds"] == [0, 1] and summary["class_conditional_marks"] == 2 * cells[0]["class_conditional_marks"]
    assert summary["methods"]["loss"]["auroc"]["mean"] == pytest.approx((cells[0]["methods"]["loss"]["auroc"] + 1.0) / 2)
    assert "seeds 2" in merged_table
    end_to_end = merged_summary["end-to-end"][0]
    assert end_to_end["methods"]["confident-learning"]["one_shot"]["test_accuracy"]["n"] == 1
    assert end_to_end["methods"]["fused"]["rounds"]["test_accuracy"]["n"] == 2
    # Both seeds' round steps are counted: the moved one is a copy.
    steps = end_to_end["methods"]["fused"]["rounds"]["validation_follows_test"]
    single = summarise([cell])["end-to-end"][0]["methods"]["fused"]["rounds"]["validation_follows_test"]
    assert steps == {key: 2 * value for key, value in single.items()}
    assert "## Choosing the round" in merged_table
    row = next(line for line in merged_table.splitlines() if line.startswith("| one shot, `confident-learning`"))
    assert "(1 of 2 seeds)" in row


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


def test_relabel_speed_benchmark_agrees_with_the_per_label_definition(tmp_path, tiny_model_dir):
    result = tmp_path / "relabel.json"
    _run("benchmarks.relabel_speed", "--model", str(tiny_model_dir), "--classes", "2", "5", "--examples", "6",
         "--batch-size", "4", "--json", str(result))
    rows = json.loads(result.read_text())["rows"]
    assert [row["classes"] for row in rows] == [2, 5]
    for row in rows:
        assert row["validation_errors"] > 0
        assert row["same_suggestions"] == 1.0
        assert row["per_label_backward_s"] > 0 and row["forward_mode_s"] > 0


def test_recovery_benchmark_scores_relabel_accuracy_with_more_than_two_classes(tmp_path, tiny_model_dir, monkeypatch):
    import csv
    import dataclasses

    from benchmarks.recovery import cells, cli, end_to_end, ranking
    from gbair.core.progress import no_progress

    words = {"fruit": ["apple", "pear", "plum"], "vehicle": ["car", "bus", "train"], "colour": ["red", "blue", "green"]}
    path = tmp_path / "three.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "label"])
        for i in range(90):
            label = list(words)[i % 3]
            writer.writerow([f"r{i}", " ".join(words[label][(i + k) % 3] for k in range(2)), label])
    load = cells.load_splits
    # A user file has no test split unless given one; the carved-out validation split stands in for it here.
    monkeypatch.setattr(cells, "load_splits", lambda *a, **k: (lambda s: dataclasses.replace(s, test=s.validation))(load(*a, **k)))
    args = cli.parse_args([
        "--train-size", "72", "--val-size", "18", "--epochs", "2", "--folds", "2", "--rounds", "2", "--knn-neighbours", "3", "--model",
        str(tiny_model_dir), "--out", str(tmp_path), "--methods", "tracin-class-loss", "loss", "knn", "confident-learning",
        "clairvoyant", "--end-to-end-methods", "knn", "--actions", "relabel", "--selection-fraction", "0",
        "--stage-cache", str(tmp_path / "stages"),
    ])
    ranked = ranking.run_ranking_cell(args, cells.CellSpec("ranking", str(path), "uniform", 0.25, 0), no_progress)
    assert ranked["classes"] == 3 and ranked["wrong_labels"] == 18
    assert set(ranked["methods"]) == {"tracin-class-loss", "loss", "knn", "confident-learning", "clairvoyant"}
    for metrics in ranked["methods"].values():
        found = round(metrics["precision_at_k"] * metrics["k"])
        assert (metrics["relabel_accuracy"] is None) == (found == 0)
        if found:
            assert round(metrics["relabel_accuracy"] * found, 6) == round(metrics["relabel_accuracy"] * found)
    spec = cells.CellSpec("end-to-end", str(path), "uniform", 0.25, 0)
    entries, saves, kept = {}, [], tmp_path / "results" / "round0.pt"
    journal = end_to_end.CellJournal(entries, lambda: saves.append(1), kept)
    finished = end_to_end.run_end_to_end_cell(args, spec, no_progress, journal)
    knn = finished["methods"]["knn"]
    assert finished["split_trusted_set"] is None and knn["flagged"] == sum(r["flagged"] for r in knn["rounds"])
    assert (knn["relabel_accuracy"] is None) == (knn["flips_found"] == 0)

    # The journal kept round 0 (in its file), the clean-label model and the three recoveries (G-BAIR and one
    # shot with kNN, cleanlab's one shot), each saved as it finished.
    assert kept.exists() and len(entries["runs"]) == 3 and len(saves) == 5
    assert entries["clean"]["accuracy"] == finished["accuracy"]["clean"]
    # Stopped after one recovery and resumed on another machine, without this one's stage cache: round 0 comes
    # from its file, the finished recovery from the journal, and the cell comes out the same.
    entries["runs"] = entries["runs"][:1]
    args.stage_cache = tmp_path / "another-machine"
    computed, run_end_to_end = [], end_to_end.run_end_to_end
    monkeypatch.setattr(end_to_end, "run_end_to_end", lambda run, which, *rest: computed.append(which) or run_end_to_end(run, which, *rest))
    timed, time_it = [], cells.CellRun.timed
    monkeypatch.setattr(cells.CellRun, "timed", lambda run, name, work: timed.append(name) or time_it(run, name, work))
    resumed = end_to_end.run_end_to_end_cell(args, spec, no_progress, journal)
    assert computed == end_to_end.end_to_end_runs(args)[1:] and len(entries["runs"]) == 3 and "round_zero" not in timed
    for key in ("accuracy", "methods", "k", "wrong_labels"):
        assert resumed[key] == finished[key]
    # Without round 0's file the kept recoveries cannot go on: the next round 0 drops them.
    round_zero, seconds = journal.round_zero()
    kept.unlink()
    assert journal.round_zero() is None
    journal.add_round_zero(round_zero, seconds)
    assert "runs" not in entries and journal.round_zero()[0].errors == round_zero.errors
    journal.close()
    assert entries == {} and not kept.exists()


def test_pair_noise_cells_flip_every_class_into_the_next_without_a_flip_pair(tmp_path):
    from benchmarks.recovery import cells, cli

    path = tmp_path / "three.csv"
    path.write_text("id,text,label\n" + "".join(f"r{i},text {i},{'xyz'[i % 3]}\n" for i in range(150)))
    args = cli.parse_args(["--grids", "ranking", "--datasets", "diasafety", "--noise", "pair", "class-conditional",
                           "--seeds", "0", "--train-size", "120", "--val-size", "30", "--out", str(tmp_path)])
    # DiaSafety has a class-conditional flip pair; a user's file has none, so it gets pair noise only.
    assert [(c.dataset, c.noise) for c in cells.grid_cells(args)] == [("diasafety", "pair"), ("diasafety", "class-conditional")]
    args.datasets = [str(path)]
    assert [c.noise for c in cells.grid_cells(args)] == ["pair"]
    data = cells.noisy_data(args, cells.CellSpec("ranking", str(path), "pair", 0.2, 0))
    names = data.splits.train.label_names
    following = {name: names[(i + 1) % len(names)] for i, name in enumerate(names)}
    noisy = dict(zip(data.splits.train.ids, data.splits.train.labels))
    assert len(data.wrong_ids) == 24
    assert all(names[noisy[i]] == following[true] for i, true in data.true_labels.items())
    assert {true for true in data.true_labels.values()} == set(names)


def test_end_to_end_cells_average_each_kept_set_over_training_seeds(tmp_path, tiny_model_dir, monkeypatch):
    from benchmarks.recovery import cells, cli, end_to_end, report
    from gbair.core.progress import no_progress

    def cell_args(workers: int, stages: str) -> argparse.Namespace:
        return cli.parse_args([
            "--train-size", "32", "--val-size", "16", "--test-size", "16", "--epochs", "2", "--rounds", "2",
            "--patience", "3", "--model", str(tiny_model_dir), "--max-length", "64", "--end-to-end-methods", "loss",
            "--one-shot-methods", "--selection-fraction", "0", "--training-seeds", "2", "--workers", str(workers),
            "--out", str(tmp_path), "--stage-cache", str(tmp_path / stages),
        ])

    retrained, add = {}, end_to_end.Retrainings.add
    monkeypatch.setattr(end_to_end.Retrainings, "add",
                        lambda self, name, dataset: retrained.update({name: dataset}) or add(self, name, dataset))
    spec = cells.CellSpec("end-to-end", "diasafety", "uniform", 0.25, 0)

    def run_cell(args: argparse.Namespace, journal: str) -> dict:
        return end_to_end.run_end_to_end_cell(args, spec, no_progress, end_to_end.CellJournal({}, lambda: None, tmp_path / journal))

    # In a pool the retrainings start while the runs still run; in one process, after them. Both, each
    # from its own empty stage cache, give the same accuracies.
    cell = run_cell(cell_args(2, "pool-stages"), "pool.pt")
    args = cell_args(1, "stages")
    serial = run_cell(args, "serial.pt")
    assert serial["accuracy_by_training_seed"] == cell["accuracy_by_training_seed"]
    for name, method in cell["methods"].items():
        in_one_process = serial["methods"][name]
        assert in_one_process["test_accuracy_by_training_seed"] == method["test_accuracy_by_training_seed"]
        assert in_one_process["one_shot"]["test_accuracy_by_training_seed"] == method["one_shot"]["test_accuracy_by_training_seed"]
    assert cell["training_seeds"] == [0, 1000]
    by_seed = cell["accuracy_by_training_seed"]
    for name in ("clean", "noisy"):
        assert len(by_seed[name]) == 2 and cell["accuracy"][name] == pytest.approx(np.mean(by_seed[name]))
    gbair = cell["methods"]["loss"]
    assert by_seed["noisy"][0] == gbair["rounds"][0]["test_accuracy"]
    # Each run's first accuracy is its kept round's; the set retrained at the other seed is that round's
    # training set: trained again at the cell's own seed, it gives the same accuracy.
    run = cells.CellRun(args, spec, no_progress)
    for one_shot, summary in ((False, gbair), (True, gbair["one_shot"])):
        kept = 1 if one_shot else summary["best_round"]
        values = summary["test_accuracy_by_training_seed"]
        assert values[0] == summary["rounds"][kept]["test_accuracy"]
        assert summary["test_accuracy"] == pytest.approx(np.mean(values))
        kept_set = retrained[end_to_end.EndToEndRun("loss", "remove", one_shot)]
        assert len(kept_set) == summary["rounds"][kept]["train_size"]
        assert run.train_and_test(run.backend.encode(kept_set))[1] == values[0]
    # The other seed draws another initial prompt and batch order.
    train = run.backend.encode(retrained["noisy"])
    own, other = (run.train_and_test(train, seed)[0].final_state for seed in cell["training_seeds"])
    assert not all(torch.equal(own[name], other[name]) for name in own)
    assert "each kept set's test accuracy the mean of 2 trainings" in report.markdown(report.summarise([cell]))


def test_validation_errors_pile_up_only_beyond_chance_with_every_class_tested():
    from benchmarks.recovery.variants import errors_pile_up

    trusted = torch.tensor([0] * 200 + [1] * 200)
    # Class-conditional flips: the trusted examples of the flips' true class take most of the errors.
    assert errors_pile_up(torch.tensor([0] * 24 + [1] * 61), trusted, 2)
    # Uniform flips: the errors split about as the classes do.
    assert not errors_pile_up(torch.tensor([0] * 47 + [1] * 48), trusted, 2)
    assert not errors_pile_up(torch.tensor([], dtype=torch.long), trusted, 2)
    # 11 of 20 errors in the first of six classes: the chance of as many is about 0.009, below 0.05 but not
    # below 0.05 / 6, so with every class tested it is no pile-up. All 20 in it are.
    six = torch.tensor([0] * 38 + [1] * 16 + [2] * 25 + [3] * 23 + [4] * 18 + [5] * 30)
    assert not errors_pile_up(torch.tensor([0] * 11 + [1] + [2] * 4 + [3] * 2 + [5] * 2), six, 6)
    assert errors_pile_up(torch.tensor([0] * 20), six, 6)


def test_round_steps_count_where_validation_moved_the_way_test_did():
    from benchmarks.recovery.report import _validation_follows_test

    def rounds(*pairs):
        return [{"val_accuracy": val, "test_accuracy": test} for val, test in pairs]

    # Up together; validation down while test is up; test unchanged (not a step); validation flat, test down.
    counts = _validation_follows_test([rounds((0.70, 0.60), (0.80, 0.65), (0.75, 0.70), (0.74, 0.70)),
                                       rounds((0.70, 0.60), (0.70, 0.55))])
    assert counts == {"same_way": 1, "steps": 3, "significant_same_way": 0, "significant_steps": 0}
    # With the misclassified trusted ids: 10 fixed and none broken is significant (p = 0.002), 2 against 1 is
    # not; both went the way test did.
    first, second, third = rounds((0.50, 0.60), (0.70, 0.65), (0.72, 0.70))
    first["val_wrong_ids"] = [f"x{i}" for i in range(15)]
    second["val_wrong_ids"] = [f"x{i}" for i in range(10, 15)]
    third["val_wrong_ids"] = [f"x{i}" for i in range(12, 15)] + ["y"]
    counts = _validation_follows_test([[first, second, third]])
    assert counts == {"same_way": 2, "steps": 2, "significant_same_way": 1, "significant_steps": 1}


def test_round_rules_average_the_first_n_trainings_and_stop_at_the_first_round_without_gain():
    from benchmarks.round_choice import kept_round, rules, table

    assert kept_round([0.70, 0.69, 0.75], patience=1) == 0
    assert kept_round([0.70, 0.69, 0.75], patience=None) == 2
    assert kept_round([0.70, 0.72, 0.72], patience=None) == 1  # a tie keeps the earlier round
    # Round 1's first training is unlucky on validation; its other three say it is the better set.
    result = {
        "cell": "toy:uniform", "seed": 0, "seeds": [0, 1000, 2000, 3000],
        "rounds": [{"round": 0}, {"round": 1}],
        "trainings": {
            "0": [[0.80, 0.70], [0.75, 0.71], [0.75, 0.72], [0.75, 0.69]],
            "1": [[0.78, 0.79], [0.85, 0.80], [0.86, 0.81], [0.85, 0.80]],
            "clean": [[0.9, 0.9]] * 4,
        },
    }
    scored = rules(result)
    assert scored["patience 1, n = 1"]["set"] == pytest.approx((0.705 + 3 * 0.80) / 4)
    assert scored["patience 1, n = 1"]["exported"] == pytest.approx((0.70 + 0.80 + 0.81 + 0.80) / 4)
    # Of the kept round's trainings, the one most accurate on validation is exported.
    assert scored["patience 1, n = 4"] == pytest.approx({"set": 0.80, "exported": 0.81})
    assert scored["best round on test"]["set"] == pytest.approx(0.80)
    markdown, summary = table([result])
    assert summary["rules"]["patience 1, n = 4"]["recovered"] == pytest.approx((0.80 - 0.705) / (0.9 - 0.705))
    assert "| patience 1, n = 4 | 0.800 (0.810) |" in markdown


def test_processes_of_a_local_ray_cluster_get_one_role_each_in_every_benchmark():
    from benchmarks.common import process_role

    site = "/home/ray/venv/lib/python3.11/site-packages/ray"
    assert process_role("ray::ServeReplica:gbair:InfluenceScorer") == "Serve replica"
    assert process_role("ray::SERVE_REPLICA::gbair#InfluenceScorer#x1") == "Serve replica"
    assert process_role("ray::ServeController.listen_for_change") == "Serve controller"
    assert process_role("ray::_TrainingWorker.__execute") == "Ray Train worker"
    assert process_role("ray::SomeActor.run") == "other Ray workers"
    assert process_role(f"{site}/core/src/ray/raylet/raylet --node_ip_address=127.0.0.1") == "Ray's own processes"
    assert process_role(f"/home/ray/venv/bin/python {site}/dashboard/dashboard.py") == "Ray's own processes"
    # KubeRay runs everything under /home/ray: a user's own program there is not Ray's.
    assert process_role("/home/ray/venv/bin/python -m benchmarks.scaling") is None
