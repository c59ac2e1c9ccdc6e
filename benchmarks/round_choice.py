"""Which round G-BAIR should keep: every round's training set of an end-to-end cell, trained N times.

For each cell (SET:NOISE@SEED) the default's G-BAIR run is replayed with every round run (from the stage
cache of `benchmarks/recovery/`, where it has run before), and each round's training set, plus the clean
set, is trained at the cell's seed and N - 1 further training seeds (other initial prompts and batch
orders, as `round_trainings` and `--training-seeds` draw them). Each training's validation and test
accuracy go into OUT/CELL.json. Then, from those files, the round rules: keep the round whose validation
accuracy, averaged over the first n trainings of each round (n = 1 is G-BAIR as published, n > 1 is
`round_trainings n`), is best, stopping at the first round without a gain (patience 1, the default) or
running every round. A rule is scored by the mean test accuracy of the set it keeps over all N trainings
(how good the cleaned set is), and by the test accuracy of the training it exports (the kept round's
training most accurate on validation).

    GBAIR_DATA_DIR=DIR python -m benchmarks.round_choice sst2:uniform@0 olid:uniform@1 --out runs/round-choice
    python -m benchmarks.round_choice --out docs/results/round-choice      # the table of the files there
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.common import run_main, write_json
from benchmarks.recovery.cells import CellRun, grid_cells
from benchmarks.recovery.cli import parse_args as grid_args
from gbair.core.config import GbairConfig
from gbair.core.evaluation import accuracy
from gbair.core.recovery_state import RecoveryState

PATIENCES = {"patience 1": 1, "every round": None}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cells", nargs="*", metavar="SET:NOISE@SEED", help="cells to train (none: only the table)")
    parser.add_argument("--trainings", type=int, default=4, help="N: trainings of each round's set")
    parser.add_argument("--workers", type=int, default=2, help="processes, one torch thread each")
    parser.add_argument("--stage-cache", type=Path, default=Path("runs/recovery-stage-cache"))
    parser.add_argument("--out", type=Path, required=True, help="folder of the per-cell JSON files and the table")
    return parser.parse_args(argv)


def _cell_args(cell: str, seed: int, args: argparse.Namespace) -> argparse.Namespace:
    """The recovery grid's settings of the end-to-end runs this replays: two rounds of k, every round run."""
    return grid_args([
        "--grids", "end-to-end", "--end-to-end", cell, "--seeds", str(seed), "--patience", "3",
        "--end-to-end-methods", GbairConfig().influence.method, "--one-shot-methods", "--selection-fraction", "0",
        "--training-seeds", str(args.trainings), "--stage-cache", str(args.stage_cache), "--out", str(args.out),
    ])


_worker: tuple[CellRun, Any] | None = None


def _start_worker(cell_args: argparse.Namespace) -> None:
    global _worker
    torch.set_num_threads(1)
    run = CellRun(cell_args, grid_cells(cell_args)[0], lambda *a, **k: None)
    _worker = run, run.backend.encode(run.data.splits.validation)


def _validation_and_test(train: Any, seed: int) -> tuple[float, float]:
    run, validation = _worker
    training, test = run.train_and_test(train, seed)
    return accuracy(run.backend.probabilities(training.final_state, validation), validation.labels), float(test)


def train_cell(name: str, args: argparse.Namespace) -> dict[str, Any]:
    cell, seed = name.rsplit("@", 1)
    cell_args = _cell_args(cell, int(seed), args)
    _start_worker(cell_args)
    run, _ = _worker
    splits = run.data.splits
    k = run.config.recovery.flag_count(len(splits.train))
    report = run.recovery(budget=k).run(run.data.wrong_ids, true_labels=run.data.true_labels or None).report
    state = RecoveryState(rounds=report.rounds)
    sets = {str(r.round): state.train_set(splits.train, "remove", r.round) for r in report.rounds}
    sets["clean"] = run.data.reference_train
    seeds = run.training_seeds()
    results: dict[tuple[str, int], tuple[float, float]] = {}
    with ProcessPoolExecutor(args.workers, initializer=_start_worker, initargs=(cell_args,)) as pool:
        futures = {pool.submit(_validation_and_test, run.backend.encode(dataset), s): (key, s)
                   for key, dataset in sets.items() for s in seeds}
        for done, future in enumerate(as_completed(futures), 1):
            results[futures[future]] = future.result()
            print(f"{name}: {done}/{len(futures)} trainings", flush=True)
    return {"cell": cell, "seed": int(seed), "seeds": seeds,
            "rounds": [{"round": r.round, "val": r.val_accuracy, "test": r.test_accuracy, "train_size": r.train_size,
                        "val_wrong": r.val_wrong_ids} for r in report.rounds],
            "trainings": {key: [list(results[key, s]) for s in seeds] for key in sets}}


def kept_round(validation: list[float], patience: int | None) -> int:
    """The round with the best validation accuracy, the earlier on a tie, stopping after `patience` rounds
    without a gain (None: every round runs)."""
    best, without_gain = 0, 0
    for index in range(1, len(validation)):
        if validation[index] > validation[best]:
            best, without_gain = index, 0
        else:
            without_gain += 1
            if patience is not None and without_gain >= patience:
                break
    return best


def rules(result: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Each rule's mean test accuracy of the kept set over all trainings ("set") and of the training it
    exports ("exported": of the kept round's n trainings, the most accurate on validation, the earliest on a
    tie, as `Recovery` chooses the round's model), averaged over every choice of n of the N trainings."""
    rounds = [np.asarray(result["trainings"][str(r["round"])]) for r in result["rounds"]]  # (N, [val, test])
    trainings = len(result["seeds"])
    mean_test = [float(r[:, 1].mean()) for r in rounds]
    scores = {}
    for (label, patience), n in itertools.product(PATIENCES.items(), range(1, trainings + 1)):
        kept_sets, exported = [], []
        for chosen in itertools.combinations(range(trainings), n):
            kept = kept_round([float(r[list(chosen), 0].mean()) for r in rounds], patience)
            kept_sets.append(mean_test[kept])
            exported.append(float(rounds[kept][max(chosen, key=lambda j: rounds[kept][j, 0]), 1]))
        scores[f"{label}, n = {n}"] = {"set": float(np.mean(kept_sets)), "exported": float(np.mean(exported))}
    scores["best round on test"] = {"set": max(mean_test), "exported": None}
    return scores


def table(results: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    names = [f"{r['cell']}@{r['seed']}" for r in results]
    clean = [float(np.asarray(r["trainings"]["clean"])[:, 1].mean()) for r in results]
    noisy = [float(np.asarray(r["trainings"]["0"])[:, 1].mean()) for r in results]
    scored = [rules(r) for r in results]
    lines = ["Mean test accuracy of the kept set over every training (in brackets: of the exported training)", "",
             "| rule | " + " | ".join(names) + " | mean | recovered |", "|---" * (len(names) + 3) + "|",
             "| clean labels | " + " | ".join(f"{c:.3f}" for c in clean) + f" | {np.mean(clean):.4f} | 1.00 |",
             "| noisy labels | " + " | ".join(f"{n:.3f}" for n in noisy) + f" | {np.mean(noisy):.4f} | 0.00 |"]
    summary = {"cells": names, "clean": clean, "noisy": noisy, "rules": {}}
    for rule in scored[0]:
        kept = [s[rule]["set"] for s in scored]
        exported = [s[rule]["exported"] for s in scored]
        recovered = np.mean([(k - n) / (c - n) for k, n, c in zip(kept, noisy, clean)])
        summary["rules"][rule] = {"set": kept, "exported": exported, "recovered": float(recovered)}
        cells = [f"{k:.3f}" + ("" if e is None else f" ({e:.3f})") for k, e in zip(kept, exported)]
        exported_mean = "" if None in exported else f" ({np.mean(exported):.4f})"
        lines.append(f"| {rule} | " + " | ".join(cells) + f" | {np.mean(kept):.4f}{exported_mean} | {recovered:.2f} |")
    return "\n".join(lines) + "\n", summary


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.cells:
        started = time.perf_counter()
        result = train_cell(name, args)
        write_json(result, args.out / f"{name.replace(':', '-').replace('@', '-seed')}.json")
        print(f"{name}: {time.perf_counter() - started:.0f} s", flush=True)
    results = [json.loads(path.read_text()) for path in sorted(args.out.glob("*-seed*.json"))]
    markdown, summary = table(results)
    (args.out / "round-choice.md").write_text(markdown)
    write_json(summary, args.out / "round-choice-summary.json")
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(lambda: main()))
