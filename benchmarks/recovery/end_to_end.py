"""The end-to-end grid: G-BAIR's rounds with each flagger against one shot of the same budget, each kept set
retrained at further training seeds, resumable from the cell's journal."""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.recovery.cells import (
    CellRun,
    CellSpec,
    clean_accuracy_in_worker,
    retrained_accuracy_in_worker,
    worker_pool,
    workers_cell,
)
from benchmarks.recovery.report import recovered_fraction
from gbair.core.confident_learning import FOLD_METHODS
from gbair.core.data.dataset import DataSplits, TextDataset
from gbair.core.model.inputs import EncodedSet
from gbair.core.progress import Progress, no_progress
from gbair.core.recovery import Recovery
from gbair.core.recovery_state import RecoveryState, TrainedRound
from gbair.core.report import RecoveryReport, RoundReport


@dataclasses.dataclass(frozen=True)


class EndToEndRun:
    """One recovery of an end-to-end cell after its shared round 0: G-BAIR's R rounds of k with a flagger,
    one shot of R·k with it, or G-BAIR with the trusted set split (`method` None: the cell's --gbair-method)."""

    method: str | None
    action: str = "remove"
    one_shot: bool = False

    @property
    def split_trusted_set(self) -> bool:
        return self.method is None


@dataclasses.dataclass


class EndToEndResult:
    run: EndToEndRun
    report: RecoveryReport
    seconds: float
    passes: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {"run": dataclasses.asdict(self.run), "report": self.report.model_dump(mode="json"),
                "seconds": self.seconds, "passes": self.passes}

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> EndToEndResult:
        return cls(EndToEndRun(**entry["run"]), RecoveryReport.model_validate(entry["report"]), entry["seconds"],
                   entry["passes"])


@dataclasses.dataclass


class CellJournal:
    """An unfinished end-to-end cell's finished parts (round 0, the clean-label model's accuracy, each finished
    recovery), kept with the grid's JSON until the cell finishes. The stage cache stays on the machine that
    computed the passes; the JSON and round 0's file beside it travel with the results, so a cell resumed on
    another machine runs only the recoveries left, from the very round 0 the finished ones started from (a
    machine with another CPU could train a slightly different one from the same inputs)."""

    entries: dict[str, Any]
    save: Callable[[], None]
    round_zero_path: Path

    def round_zero(self) -> tuple[TrainedRound, float] | None:
        """Round 0 and the seconds it took, if kept."""
        kept = self.entries.get("round_zero")
        if kept is None or not self.round_zero_path.exists():
            return None
        return TrainedRound.load(self.round_zero_path), kept["seconds"]

    def add_round_zero(self, round_zero: TrainedRound, seconds: float) -> None:
        """Recoveries kept from another round 0 (whose file is gone) cannot be mixed with this one's."""
        self.entries.pop("runs", None)
        self.round_zero_path.parent.mkdir(parents=True, exist_ok=True)
        round_zero.save_to(self.round_zero_path)
        self.entries["round_zero"] = {"file": self.round_zero_path.name, "seconds": seconds}
        self.save()

    def finished_runs(self) -> list[EndToEndResult]:
        return [EndToEndResult.from_json(entry) for entry in self.entries.get("runs", [])]

    def add_run(self, result: EndToEndResult) -> None:
        self.entries.setdefault("runs", []).append(result.to_json())
        self.save()

    def clean(self) -> tuple[float, float, dict[str, int]] | None:
        clean = self.entries.get("clean")
        return None if clean is None else (clean["accuracy"], clean["seconds"], clean["passes"])

    def add_clean(self, accuracy: float, seconds: float, passes: dict[str, int]) -> None:
        self.entries["clean"] = {"accuracy": accuracy, "seconds": seconds, "passes": passes}
        self.save()

    def close(self) -> None:
        """The cell finished: its results are in the JSON's cells."""
        self.entries.clear()
        self.round_zero_path.unlink(missing_ok=True)
        if not any(self.round_zero_path.parent.iterdir()):
            self.round_zero_path.parent.rmdir()


def end_to_end_runs(args: argparse.Namespace) -> list[EndToEndRun]:
    """In the order a pool of workers should start them: the longest G-BAIR run first; the other G-BAIR runs;
    then further fold-training runs, which by then find round 0's fold models (the same for every such
    flagger) in the stage cache instead of training them alongside the first; one-shot runs last."""
    gbair = [EndToEndRun(method, action) for method in args.end_to_end_methods for action in args.actions]
    if args.selection_fraction:
        gbair.append(EndToEndRun(None))
    folds = [r for r in gbair if r.method in FOLD_METHODS]
    one_shot = [EndToEndRun(method, action, one_shot=True) for method in _flaggers(args) for action in args.actions]
    return folds[:1] + [r for r in gbair if r.method not in FOLD_METHODS] + folds[1:] + one_shot


def _runs_left(args: argparse.Namespace, finished: list[EndToEndResult]) -> list[EndToEndRun]:
    done = {result.run for result in finished}
    return [which for which in end_to_end_runs(args) if which not in done]


def _flaggers(args: argparse.Namespace) -> list[str]:
    """Every flagger of the end-to-end runs: G-BAIR's, then those run as one shot only."""
    return list(dict.fromkeys([*args.end_to_end_methods, *args.one_shot_methods]))


def _run_name(args: argparse.Namespace, method: str, action: str) -> str:
    """The flagger's name in the results, with the action where more than one was run."""
    return method if len(args.actions) == 1 else f"{method} {action}"


def run_end_to_end(run: CellRun, which: EndToEndRun, k: int, start: RecoveryState, round_zero: TrainedRound,
                   progress: Progress) -> EndToEndResult:
    started = time.perf_counter()
    if which.split_trusted_set:
        recovery = run.recovery(budget=k, selection_fraction=run.args.selection_fraction)
        # Its round 0 picks its errors from the scoring part only, so it is not the cell's shared round 0;
        # the training itself is, and comes from the stage cache.
        report = recovery.run(run.data.wrong_ids, progress, true_labels=run.data.true_labels or None).report
    else:
        budget = {"budget": k * run.args.rounds, "rounds": 1, "round_trainings": 1} if which.one_shot else {"budget": k}
        report = _continue(run.recovery(method=which.method, action=which.action, **budget), start, round_zero, progress)
    return EndToEndResult(which, report, round(time.perf_counter() - started, 2), run.backends[-1].passes())


def _run_in_worker(which: EndToEndRun, k: int, start: RecoveryState, round_zero: TrainedRound) -> EndToEndResult:
    return run_end_to_end(workers_cell(), which, k, start, round_zero, no_progress)


def kept_round(result: EndToEndResult) -> int:
    """G-BAIR keeps its best round by validation; a one shot, its retrained one."""
    return result.report.rounds[-1].round if result.run.one_shot else result.report.best_round


def first_training_test_accuracy(trained: TrainedRound | RoundReport) -> float:
    """A round's test accuracy from the cell's own training seed; the retrainings add the further seeds'. With
    several trainings a round, the round's own `test_accuracy` is its model's, which may be another one."""
    return trained.test_accuracy if trained.test_accuracies is None else trained.test_accuracies[0]


def kept_train_set(splits: DataSplits, result: EndToEndResult) -> TextDataset:
    return RecoveryState(rounds=result.report.rounds).train_set(splits.train, result.run.action,
                                                                 before_round=kept_round(result))


class Retrainings:
    """The cell's sets trained again at each training seed after the cell's own (whose accuracy the runs
    already have). In a pool each set's trainings start as soon as the set is known, so they fill the
    workers that the runs still running leave idle. A set that two runs kept is trained once per seed."""

    def __init__(self, run: CellRun, pool: ProcessPoolExecutor | None):
        self.run, self.pool = run, pool
        self.other_seeds = run.training_seeds()[1:]
        self.contents: dict[Any, tuple] = {}
        self.encoded: dict[tuple, EncodedSet] = {}
        self.futures: dict[tuple, Future] = {}

    def add(self, name: Any, dataset: TextDataset) -> None:
        if not self.other_seeds:
            return
        content = self.contents[name] = (tuple(dataset.ids), tuple(dataset.labels))
        if content in self.encoded:
            return
        encoded = self.encoded[content] = self.run.backend.encode(dataset)
        if self.pool is not None:
            for seed in self.other_seeds:
                self.futures[content, seed] = self.pool.submit(retrained_accuracy_in_worker, encoded, seed)

    def accuracies(self, progress: Progress) -> dict[Any, list[float]]:
        """Each added set's accuracies at the other seeds, by its name; empty with one training seed."""
        trainings = [(content, seed) for content in self.encoded for seed in self.other_seeds]
        progress("retrainings at other seeds", 0, len(trainings))
        accuracies: dict[tuple, float] = {}
        if self.pool is None:
            for done, (content, seed) in enumerate(trainings, 1):
                accuracies[content, seed] = self.run.train_and_test(self.encoded[content], seed)[1]
                progress("retrainings at other seeds", done, len(trainings))
        else:
            futures = {self.futures[training]: training for training in trainings}
            for done, future in enumerate(as_completed(futures), 1):
                accuracies[futures[future]] = future.result()
                progress("retrainings at other seeds", done, len(trainings))
        return {name: [accuracies[content, seed] for seed in self.other_seeds] for name, content in self.contents.items()}


def run_end_to_end_cell(args: argparse.Namespace, spec: CellSpec, progress: Progress,
                        journal: CellJournal) -> dict[str, Any]:
    run = CellRun(args, spec, progress)
    splits = run.data.splits
    # Budget as a count, the same in every round, so that R rounds and one shot flag the same total.
    k = run.config.recovery.flag_count(len(splits.train))
    first = run.recovery(budget=k)
    start = first.start(run.data.wrong_ids, run.data.true_labels or None)

    def train_round_zero() -> TrainedRound:
        kept = journal.round_zero()
        if kept is not None:
            run.seconds["round_zero"] = kept[1]
            return kept[0]
        trained = run.timed("round_zero", lambda: first.train_round(start, progress))
        journal.add_round_zero(trained, run.seconds["round_zero"])
        return trained

    def start_retrainings(pool: ProcessPoolExecutor | None, runs: list[EndToEndResult]) -> Retrainings:
        retrainings = Retrainings(run, pool)
        retrainings.add("clean", run.data.reference_train)
        retrainings.add("noisy", splits.train)
        for result in runs:
            retrainings.add(result.run, kept_train_set(splits, result))
        return retrainings

    def retrained(retrainings: Retrainings) -> dict[Any, list[float]]:
        """Keyed "clean", "noisy" and by each run; empty with one training seed. In a pool, the time is the
        wait for the retrainings after the last run, not their whole time."""
        if not retrainings.other_seeds:
            return {}
        return run.timed("retrainings", lambda: retrainings.accuracies(progress))

    if args.workers == 1:
        round_zero = train_round_zero()
        passes = run.passes()  # before the runs: in this process their backends join the cell's
        if journal.clean() is None:
            journal.add_clean(*run.clean_accuracy())
        results = journal.finished_runs()
        for which in _runs_left(args, results):
            results.append(run_end_to_end(run, which, k, start, round_zero, progress))
            journal.add_run(results[-1])
        retrained_accuracies = retrained(start_retrainings(None, results))
    else:
        with worker_pool(args, spec) as pool:
            # A worker trains the clean-label model during round 0.
            clean = pool.submit(clean_accuracy_in_worker) if journal.clean() is None else None
            round_zero = train_round_zero()
            results = journal.finished_runs()
            futures = [pool.submit(_run_in_worker, which, k, start, round_zero) for which in _runs_left(args, results)]
            # Queued behind the runs, so they take the workers the runs leave free.
            retrainings = start_retrainings(pool, results)
            if clean is not None:
                journal.add_clean(*clean.result())
            passes = run.passes()
            total = len(results) + len(futures)
            progress("end-to-end runs", len(results), total)
            for future in as_completed(futures):
                results.append(future.result())
                journal.add_run(results[-1])
                retrainings.add(results[-1].run, kept_train_set(splits, results[-1]))
                progress("end-to-end runs", len(results), total)
            retrained_accuracies = retrained(retrainings)
    clean_accuracy, run.seconds["train_clean"], clean_passes = journal.clean()
    passes = {key: value + clean_passes[key] for key, value in passes.items()}
    own_seed = {"clean": clean_accuracy, "noisy": first_training_test_accuracy(round_zero),
                **{result.run: first_training_test_accuracy(result.report.rounds[kept_round(result)])
                   for result in results}}
    by_seed = {key: [value, *retrained_accuracies.get(key, [])] for key, value in own_seed.items()}
    clean_accuracy, noisy_accuracy = float(np.mean(by_seed["clean"])), float(np.mean(by_seed["noisy"]))
    noisy_label = {i: splits.label_names[label] for i, label in zip(splits.train.ids, splits.train.labels)}

    def summary(report: RecoveryReport, accuracies: list[float]) -> dict[str, Any]:
        # With two classes a relabelled flip always gets its true label: relabel accuracy says nothing there.
        relabeled = {i: name for r in report.rounds for i, name in r.relabels.items()
                     if i in run.data.true_labels and len(splits.label_names) > 2}
        test_accuracy = float(np.mean(accuracies))
        return {
            "test_accuracy": test_accuracy,
            "test_accuracy_by_training_seed": accuracies,
            "recovered_fraction": recovered_fraction(clean_accuracy, noisy_accuracy, test_accuracy),
            "flagged": sum(len(r.flagged_ids) for r in report.rounds),
            "flips_found": sum(r.flagged_corrupted or 0 for r in report.rounds),
            "relabel_accuracy": (float(np.mean([report.true_labels[i] == name for i, name in relabeled.items()]))
                                 if relabeled else None),
            "best_round": report.best_round,
            "rounds": [{"round": r.round, "train_size": r.train_size, "val_accuracy": r.val_accuracy,
                        "val_accuracies": r.val_accuracies, "val_loss": r.val_loss, "val_change_p_value": r.val_change_p_value,
                        # Which trusted examples each round gets wrong: paired tests between any two rounds.
                        "val_wrong_ids": r.val_wrong_ids,
                        "test_accuracy": r.test_accuracy, "test_accuracies": r.test_accuracies,
                        "model_training": r.model_training, "flagged": len(r.flagged_ids),
                        "flagged_corrupted": r.flagged_corrupted,
                        # A flagger that takes more of one class than the flips hold shifts the class prior.
                        "flagged_by_noisy_label": dict(Counter(noisy_label[i] for i in r.flagged_ids)),
                        "flips_found_by_true_label": dict(Counter(report.true_labels[i] for i in r.flagged_ids
                                                                  if i in report.true_labels))}
                       for r in report.rounds],
        }

    methods: dict[str, Any] = {}
    split = None
    for result in results:
        which, report = result.run, result.report
        passes = {key: passes[key] + result.passes[key] for key in passes}
        if which.split_trusted_set:
            run.seconds["gbair_split_trusted"] = result.seconds
            split = {"method": args.gbair_method, "selection_fraction": args.selection_fraction,
                     **summary(report, by_seed[which])}
            continue
        name = _run_name(args, which.method, which.action)
        run.seconds[f"{'one_shot' if which.one_shot else 'gbair'}_{name}"] = result.seconds
        if which.one_shot:
            methods.setdefault(name, {})["one_shot"] = summary(report, by_seed[which])
        else:
            methods.setdefault(name, {}).update(summary(report, by_seed[which]))
    # Listed in the order asked for, whatever order the workers finished in.
    order = [_run_name(args, method, action) for method in _flaggers(args) for action in args.actions]
    return {
        **run.header(), "k": k, "rounds": args.rounds, "workers": args.workers,
        "training_seeds": run.training_seeds(),
        "accuracy": {"clean": clean_accuracy, "noisy": noisy_accuracy},
        "accuracy_by_training_seed": {"clean": by_seed["clean"], "noisy": by_seed["noisy"]},
        "methods": {name: methods[name] for name in order},
        "split_trusted_set": split, "seconds": run.seconds, "passes": passes,
    }


def _continue(recovery: Recovery, start: RecoveryState, round_zero: TrainedRound, progress: Progress) -> RecoveryReport:
    """Round 0 trains on the same data from the same start whatever the flagger, so it is trained once per cell."""
    state = recovery.finish_round(start, round_zero, progress)
    while not state.finished:
        state = recovery.finish_round(state, recovery.train_round(state, progress), progress)
    return recovery.report(state)


