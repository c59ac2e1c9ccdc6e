"""Mislabel detection and recovery: every scoring method against every baseline (MISSION.md section 3).

For each data set, corruption rate p and seed: train on the clean labels (test accuracy "clean"); flip a
fraction p of the training labels and train again (test accuracy "corrupted", and the checkpoints every
method scores); rank the training set with every method from those same checkpoints (AUROC, precision@k
and recall of the flipped labels among the k flagged); confident learning from K-fold training; then run
G-BAIR with remove and with relabel (test accuracy of the best round by validation accuracy, and the
recovered fraction (after - corrupted) / (clean - corrupted)).

    python -m benchmarks.recovery --quick --out /tmp/recovery-quick
    python -m benchmarks.recovery --out docs/results/recovery-full   # the full protocol: hours on a CPU
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, get_args

import numpy as np
from rich.console import Console

from benchmarks.common import (
    CURVE_POINTS,
    format_mean_std,
    line_plot,
    machine,
    markdown_table,
    mean_std,
    ranking_metrics,
    run_main,
    write_json,
)
from gbair.cli.display import ProgressBars
from gbair.core.config import CleaningAction, GbairConfig, ScoringMethod
from gbair.core.confident_learning import out_of_sample_fit
from gbair.core.data import NAMED_SETS, corrupt_labels, load_splits
from gbair.core.data.dataset import DataSplits
from gbair.core.evaluation import accuracy, predict_probabilities
from gbair.core.influence import INFLUENCE_METHODS, NEEDS_INITIAL_STATE, query_gradients, suspicion_scores
from gbair.core.influence.methods import standardise_within, tracin
from gbair.core.model import PetClassifier, encode
from gbair.core.model.inputs import EncodedSet
from gbair.core.progress import Progress
from gbair.core.recovery import LocalBackend, Recovery
from gbair.core.training import initial_checkpoint

# Measured here only, to see what closes the gap of the plain sum (MISSION.md "A trap in the plain sum").
VARIANTS = {
    "tracin-within-class": lambda stats: standardise_within(tracin(stats), stats.train_labels),
}
# The benchmark protocol's sets (docs/benchmarks.md); SST-2 and OLID come from `gbair data fetch sst2 olid`.
PROTOCOL_SETS = ("diasafety", "sst2", "olid")
METHODS = [*INFLUENCE_METHODS, "confident-learning", *VARIANTS]
QUICK = {
    "datasets": ["diasafety"], "corruption": [0.2], "seeds": [0], "train_size": 200, "val_size": 100,
    "test_size": 200, "epochs": 2, "rounds": 1, "folds": 2,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", choices=NAMED_SETS, default=list(PROTOCOL_SETS))
    parser.add_argument("--corruption", nargs="+", type=float, default=[0.1, 0.2, 0.3], help="fractions p flipped")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--train-size", type=int, default=2000)
    parser.add_argument("--val-size", type=int, default=400)
    parser.add_argument("--test-size", type=int, default=None, help="seeded test subsample (default: the whole split)")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--model", default=GbairConfig().model.name_or_path)
    parser.add_argument("--max-length", type=int, default=GbairConfig().model.max_length,
                        help="tokens per example, prompt excluded")
    parser.add_argument("--epochs", type=int, default=GbairConfig().train.epochs)
    parser.add_argument("--checkpoints-per-epoch", type=int, default=GbairConfig().train.checkpoints_per_epoch)
    parser.add_argument("--rounds", type=int, default=2, help="G-BAIR cleaning rounds after round 0")
    parser.add_argument("--budget", type=float, default=GbairConfig().recovery.budget, help="k: flagged per round")
    parser.add_argument("--folds", type=int, default=GbairConfig().influence.confident_learning_folds,
                        help="K of confident learning's K-fold training")
    parser.add_argument("--gbair-method", choices=get_args(ScoringMethod), default=GbairConfig().influence.method,
                        help="the scoring method G-BAIR's rounds use")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=METHODS, help="rankings to score")
    parser.add_argument("--actions", nargs="*", choices=get_args(CleaningAction), default=list(get_args(CleaningAction)))
    parser.add_argument("--quick", action="store_true", help=f"a few minutes: {QUICK}")
    parser.add_argument("--out", type=Path, required=True, help="folder for recovery.json, recovery.md and plots")
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    return args


def build_config(args: argparse.Namespace, seed: int, action: str = "remove") -> GbairConfig:
    return GbairConfig(
        model={"name_or_path": args.model, "max_length": args.max_length},
        train={"epochs": args.epochs, "checkpoints_per_epoch": args.checkpoints_per_epoch, "seed": seed},
        influence={"method": args.gbair_method, "seed": seed, "confident_learning_folds": args.folds},
        recovery={"rounds": args.rounds, "budget": args.budget, "action": action},
    )


def run_cell(args: argparse.Namespace, dataset: str, fraction: float, seed: int, progress: Progress) -> dict[str, Any]:
    """One data set, corruption rate and seed: accuracies, every method's ranking, and G-BAIR."""
    config = build_config(args, seed)
    splits = load_splits(dataset, data_dir=args.data_dir, train_size=args.train_size, val_size=args.val_size, seed=seed)
    if args.test_size is not None and splits.test is not None and args.test_size < len(splits.test):
        chosen = np.sort(np.random.default_rng(seed).choice(len(splits.test), args.test_size, replace=False))
        splits = dataclasses.replace(splits, test=splits.test.subset(chosen.tolist()))
    corrupted, flipped = corrupt_labels(splits.train, fraction, seed=seed)
    classifier = PetClassifier.build(config.model, splits.label_names, seed=seed)
    initial = classifier.pet_state()
    backend = LocalBackend(config)
    validation, test = encode(classifier, splits.validation), encode(classifier, splits.test)
    seconds: dict[str, float] = {}

    def timed(name: str, work):
        started = time.perf_counter()
        result = work()
        seconds[name] = round(time.perf_counter() - started, 2)
        return result

    def train_and_test(train: EncodedSet):
        classifier.load_pet_state(initial)
        training = backend.train(classifier, train, progress)
        return training, accuracy(predict_probabilities(classifier, test), test.labels)

    _, clean_accuracy = timed("train_clean", lambda: train_and_test(encode(classifier, splits.train)))
    train = encode(classifier, corrupted)
    training, corrupted_accuracy = timed("train_corrupted", lambda: train_and_test(train))
    errors = (predict_probabilities(classifier, validation).argmax(1) != validation.labels).nonzero().flatten().tolist()
    batch_size = config.influence.batch_size

    def statistics(checkpoints):
        queries = query_gradients(classifier, checkpoints, validation.subset(errors), batch_size)
        return backend.training_statistics(classifier, checkpoints, train, queries, progress)

    stats = timed("influence", lambda: statistics(training.checkpoints))
    initial_stats = None
    if NEEDS_INITIAL_STATE.intersection(args.methods):
        initial_stats = timed("influence_initial_state", lambda: statistics([initial_checkpoint(initial)]))
    is_flipped = np.isin(train.ids, flipped)
    flag_count = config.recovery.flag_count(len(train))
    methods = {
        method: ranking_metrics(
            suspicion_scores(
                stats, method, vote_top_fraction=config.influence.vote_top_fraction, seed=seed, initial=initial_stats
            ),
            is_flipped,
            flag_count,
        )
        for method in INFLUENCE_METHODS
        if method in args.methods
    }
    for name, variant in VARIANTS.items():
        if name in args.methods:
            methods[name] = ranking_metrics(variant(stats).numpy(), is_flipped, flag_count)
    if "confident-learning" in args.methods:
        fit = timed(
            "confident_learning",
            lambda: out_of_sample_fit(classifier, train, initial, backend.train, args.folds, seed, progress),
        )
        methods["confident-learning"] = ranking_metrics(fit.suspicion_scores(), is_flipped, flag_count)

    gbair = {}
    for action in args.actions:
        classifier.load_pet_state(initial)
        recovery = Recovery(
            dataclasses.replace(splits, train=corrupted), build_config(args, seed, action), classifier=classifier
        )
        report = timed(f"gbair_{action}", lambda: recovery.run(flipped, progress)).report
        best = report.rounds[report.best_round].test_accuracy
        gbair[action] = {
            "test_accuracy": best,
            "best_round": report.best_round,
            "recovered_fraction": _recovered(clean_accuracy, corrupted_accuracy, best),
            "rounds": [
                {
                    "round": row.round, "train_size": row.train_size, "val_accuracy": row.val_accuracy,
                    "test_accuracy": row.test_accuracy, "flagged": len(row.flagged_ids),
                    "flagged_corrupted": row.flagged_corrupted,
                }
                for row in report.rounds
            ],
        }
    return {
        "dataset": dataset, "corruption": fraction, "seed": seed,
        "sizes": {"train": len(splits.train), "validation": len(splits.validation), "test": len(splits.test)},
        "flipped": len(flipped), "misclassified_val": len(errors), "checkpoints": len(training.checkpoints),
        "accuracy": {"clean": clean_accuracy, "corrupted": corrupted_accuracy},
        "methods": methods, "gbair": gbair, "seconds": seconds,
    }


def _recovered(clean: float, corrupted: float, after: float) -> float | None:
    """Undefined when corruption did not lower accuracy."""
    return (after - corrupted) / (clean - corrupted) if clean > corrupted else None


def summarise(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± std over seeds for each data set and corruption rate."""
    groups: dict[tuple[str, float], list[dict[str, Any]]] = defaultdict(list)
    for cell in cells:
        groups[(cell["dataset"], cell["corruption"])].append(cell)
    summaries = []
    for (dataset, fraction), group in groups.items():
        actions = group[0]["gbair"]
        summary: dict[str, Any] = {
            "dataset": dataset, "corruption": fraction, "seeds": [c["seed"] for c in group],
            "accuracy": {name: mean_std([c["accuracy"][name] for c in group]) for name in ("clean", "corrupted")},
            "gbair": {},
            "methods": {},
        }
        for action in actions:
            recovered = [c["gbair"][action]["recovered_fraction"] for c in group]
            rounds = max(len(c["gbair"][action]["rounds"]) for c in group)
            summary["gbair"][action] = {
                "test_accuracy": mean_std([c["gbair"][action]["test_accuracy"] for c in group]),
                "recovered_fraction": mean_std([r for r in recovered if r is not None]) if any(r is not None for r in recovered) else None,
                # Rounds a patience stop skipped are left out of that round's mean.
                "test_accuracy_per_round": [
                    mean_std([c["gbair"][action]["rounds"][r]["test_accuracy"] for c in group if r < len(c["gbair"][action]["rounds"])])
                    for r in range(rounds)
                ],
            }
        for method in group[0]["methods"]:
            metrics = [c["methods"][method] for c in group]
            summary["methods"][method] = {
                **{name: mean_std([m[name] for m in metrics]) for name in ("auroc", "precision_at_k", "recall_at_k")},
                "k": metrics[0]["k"],
                "flips_found_curve": np.mean([m["flips_found_curve"] for m in metrics], axis=0).round(4).tolist(),
            }
        summaries.append(summary)
    return summaries


def markdown(summaries: list[dict[str, Any]]) -> str:
    actions = list(summaries[0]["gbair"]) if summaries else []
    header = ["data set", "p", "seeds", "clean", "corrupted"]
    for action in actions:
        header += [f"G-BAIR {action}", "recovered"]
    rows = []
    for s in summaries:
        row = [s["dataset"], s["corruption"], len(s["seeds"]), format_mean_std(s["accuracy"]["clean"]),
               format_mean_std(s["accuracy"]["corrupted"])]
        for action in actions:
            recovered = s["gbair"][action]["recovered_fraction"]
            row += [format_mean_std(s["gbair"][action]["test_accuracy"]), "–" if recovered is None else format_mean_std(recovered, 2)]
        rows.append(row)
    text = "Test accuracy (G-BAIR: best round by validation accuracy)\n\n" + markdown_table(header, rows)
    text += "\nFirst round's ranking of the flipped labels, best AUROC first (k = flagged per round)\n\n"
    rows = []
    for s in summaries:
        ranked = sorted(s["methods"].items(), key=lambda item: -item[1]["auroc"]["mean"])
        for method, m in ranked:
            rows.append([s["dataset"], s["corruption"], f"`{method}`", format_mean_std(m["auroc"]),
                         f"{format_mean_std(m['precision_at_k'])} (k={m['k']})", format_mean_std(m["recall_at_k"])])
    return text + markdown_table(["data set", "p", "method", "AUROC", "precision@k", "recall@k"], rows)


def plots(summaries: list[dict[str, Any]], folder: Path) -> list[Path]:
    written = []
    inspected = np.linspace(0, 1, CURVE_POINTS).tolist()
    for s in summaries:
        name = f"{s['dataset']}-p{s['corruption']}"
        curves = {method: (inspected, m["flips_found_curve"]) for method, m in s["methods"].items()}
        written.append(line_plot(
            curves, folder / f"flips-found-{name}.png", diagonal=True,
            title=f"{s['dataset']}, p = {s['corruption']}: flipped labels found (first round)",
            xlabel="fraction of the training set inspected, most suspicious first", ylabel="fraction of flips found",
        ))
        series = {}
        for action, g in s["gbair"].items():
            per_round = g["test_accuracy_per_round"]
            series[f"G-BAIR {action}"] = (list(range(len(per_round))), [r["mean"] for r in per_round])
        rounds = max(len(x) for x, _ in series.values()) if series else 1
        series["clean labels"] = (list(range(rounds)), [s["accuracy"]["clean"]["mean"]] * rounds)
        written.append(line_plot(
            series, folder / f"accuracy-rounds-{name}.png",
            title=f"{s['dataset']}, p = {s['corruption']}: test accuracy per G-BAIR round",
            xlabel="round (0: the corrupted data as given)", ylabel="test accuracy (mean over seeds)", integer_x=True,
        ))
    return written


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(stderr=True)
    started = time.perf_counter()
    run = {"command": " ".join(["python -m benchmarks.recovery", *(argv if argv is not None else sys.argv[1:])]),
           "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
           "machine_at_start": machine(), "cells": []}
    # Seeds outermost: a run stopped early still covers every data set and rate with the seeds it finished.
    grid = [(d, p, s) for s in args.seeds for d in args.datasets for p in args.corruption]
    with ProgressBars(console) as progress:
        for index, (dataset, fraction, seed) in enumerate(grid, start=1):
            progress("benchmark cells", index - 1, len(grid))
            cell = run_cell(args, dataset, fraction, seed, progress)
            run["cells"].append(cell)
            console.print(f"{dataset} p={fraction} seed={seed}: clean {cell['accuracy']['clean']:.3f}, corrupted "
                          f"{cell['accuracy']['corrupted']:.3f}, "
                          f"best AUROC {max(m['auroc'] for m in cell['methods'].values()):.3f}, "
                          f"{sum(cell['seconds'].values()):.0f} s")
            # Written after every cell, so an interrupted run keeps what it finished.
            run["summary"] = summarise(run["cells"])
            run["wall_seconds"] = round(time.perf_counter() - started, 1)
            run["machine_at_end"] = machine()
            write_json(run, args.out / "recovery.json")
            (args.out / "recovery.md").write_text(markdown(run["summary"]))
            written = plots(run["summary"], args.out)
    print(markdown(run["summary"]))
    console.print(f"wrote {args.out / 'recovery.json'}, {args.out / 'recovery.md'} and {len(written)} plots "
                  f"in {run['wall_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
