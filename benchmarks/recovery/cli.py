"""The command line: which cells to run, resuming a grid from its JSON, merging grids run apart."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

from rich.console import Console

from benchmarks import recovery
from benchmarks.common import machine, write_json
from benchmarks.recovery.cells import (CLASS_CONDITIONAL_FLIPS, DEFAULT_NOISE, NOISE_KINDS, REAL_NOISE, TRAIN_SIZES,
                                      grid_cells)
from benchmarks.recovery.end_to_end import CellJournal, run_end_to_end_cell
from benchmarks.recovery.ranking import run_ranking_cell
from benchmarks.recovery.report import markdown, plots, summarise
from benchmarks.recovery.variants import RANKED
from gbair.cli.display import progress_display
from gbair.core.config import CleaningAction, GbairConfig, ScoringMethod
from gbair.core.data import NAMED_SETS

END_TO_END_METHODS = ["tracin-class-loss", "fused", "tracin", "loss", "aum", "knn", "confident-learning"]
END_TO_END_CELLS = ["sst2:uniform", "diasafety:class-conditional", "convabuse:real"]
# Settings a finished cell depends on: a rerun that changes any of them must not reuse the old cells.
CELL_SETTINGS = ("train_size", "train_sizes", "val_size", "test_size", "model", "epochs", "checkpoints_per_epoch",
                 "rounds", "patience", "budget", "folds", "knn_neighbours", "gbair_method", "flips", "selection_fraction",
                 "training_seeds", "round_trainings")
# What the cell settings of results written before a setting existed mean by its absence.
CELL_SETTINGS_BEFORE = {"training_seeds": 1, "round_trainings": 1}
# Bundled with gbair, so the quick run needs no `gbair data fetch`.
QUICK = {
    "datasets": ["diasafety"], "noise": ["uniform"], "corruption": [0.2], "seeds": [0], "train_size": 200,
    "val_size": 100, "test_size": 200, "epochs": 2, "rounds": 1, "folds": 2, "end_to_end": ["diasafety:uniform"],
    "end_to_end_methods": ["tracin-class-loss", "loss"],
}



def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.recovery", description=recovery.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grids", nargs="+", choices=["ranking", "end-to-end"], default=["ranking", "end-to-end"])
    parser.add_argument("--datasets", nargs="+", choices=NAMED_SETS, default=list(NAMED_SETS),
                        help="ranking grid's data sets; SST-2 and OLID come from `gbair data fetch sst2 olid` "
                        "(real noise on " + ", ".join(sorted(REAL_NOISE)) + ")")
    parser.add_argument("--noise", nargs="+", choices=[k for k in NOISE_KINDS if k != "real"], default=list(DEFAULT_NOISE),
                        help="synthetic noise kinds of the ranking grid; a set without a --flip pair skips class-conditional; "
                        "pair: every class flipped to the next in label order")
    parser.add_argument("--flip", nargs="*", default=[], metavar="SET=FROM:TO",
                        help=f"class-conditional flip per data set (defaults: {CLASS_CONDITIONAL_FLIPS})")
    parser.add_argument("--corruption", nargs="+", type=float, default=[0.2], help="fractions p flipped")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--train-size", type=int, default=2000)
    parser.add_argument("--train-size-for", nargs="*", default=[], metavar="SET=N|all",
                        help=f"per-set training sizes (defaults: {TRAIN_SIZES}, None: all)")
    parser.add_argument("--val-size", type=int, default=400)
    parser.add_argument("--test-size", type=int, default=None, help="seeded test subsample (default: the whole split)")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--model", default=GbairConfig().model.name_or_path)
    parser.add_argument("--max-length", type=int, default=GbairConfig().model.max_length,
                        help="tokens per example, prompt excluded")
    parser.add_argument("--epochs", type=int, default=GbairConfig().train.epochs)
    parser.add_argument("--checkpoints-per-epoch", type=int, default=GbairConfig().train.checkpoints_per_epoch)
    parser.add_argument("--rounds", type=int, default=2, help="R: G-BAIR cleaning rounds after round 0")
    parser.add_argument("--patience", type=int, default=GbairConfig().recovery.patience,
                        help="G-BAIR's rounds without a better validation accuracy before it stops; above --rounds, "
                        "every round runs, so that other round choices can be read from the results")
    parser.add_argument("--budget", type=float, default=GbairConfig().recovery.budget,
                        help="k: flagged per round, a fraction of the initial training set or a count")
    parser.add_argument("--folds", type=int, default=GbairConfig().influence.confident_learning_folds,
                        help="K of confident learning's K-fold training (and of the ensemble)")
    parser.add_argument("--knn-neighbours", type=int, default=GbairConfig().influence.knn_neighbours)
    parser.add_argument("--gbair-method", choices=get_args(ScoringMethod), default=GbairConfig().influence.method,
                        help="whose TracIn relabel suggestions are scored, and G-BAIR's method with a split trusted set")
    parser.add_argument("--methods", nargs="+", choices=RANKED, default=RANKED, help="rankings to score")
    parser.add_argument("--end-to-end", nargs="*", default=END_TO_END_CELLS, metavar="SET:NOISE",
                        help="end-to-end cells (sets not installed are skipped)")
    parser.add_argument("--end-to-end-methods", nargs="+", choices=get_args(ScoringMethod), default=END_TO_END_METHODS,
                        help="flaggers of the G-BAIR and one-shot runs")
    parser.add_argument("--one-shot-methods", nargs="*", choices=get_args(ScoringMethod), default=["confident-learning"],
                        help="flaggers run as one shot only, beside the --end-to-end-methods (default: cleanlab's "
                        "usual workflow, confident learning's flag once and retrain once)")
    parser.add_argument("--actions", nargs="*", choices=get_args(CleaningAction), default=["remove"],
                        help="what the end-to-end runs do with flagged examples")
    parser.add_argument("--selection-fraction", type=float, default=0.5,
                        help="share of the trusted set that picks G-BAIR's round in the split-trusted-set run (0: skip it)")
    parser.add_argument("--training-seeds", type=int, default=1,
                        help="end to end: train the clean set, the noisy set and each run's kept set this many times (the "
                        "cell's own seed, then other initial prompts and batch orders) and report mean test accuracies, "
                        "so that retraining noise does not decide between runs; G-BAIR still picks its round from the "
                        "cell's own training")
    parser.add_argument("--round-trainings", type=int, default=GbairConfig().recovery.round_trainings,
                        help="G-BAIR's trainings of each round's data: the round's validation accuracy is their mean "
                        "(the first training is the one scored; one-shot runs train once)")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes, one torch thread each, that share a cell's work through the stage cache: a "
                        "ranking cell's trainings (clean, noisy, folds), an end-to-end cell's recoveries; one per core")
    parser.add_argument("--stage-cache", type=Path, default=Path("runs/recovery-stage-cache"),
                        help="every training and influence pass, so a cell stopped midway resumes from its last pass")
    parser.add_argument("--quick", action="store_true", help=f"a few minutes: {QUICK}")
    parser.add_argument("--merge", nargs="+", type=Path, default=[], metavar="FOLDER",
                        help="run no cell: summarise together the finished cells of grids run apart (other seeds, "
                        "other sessions or machines) into --out")
    parser.add_argument("--out", type=Path, required=True, help="folder for recovery.md and plots")
    parser.add_argument("--json", type=Path, default=None, help="results, rewritten after every cell and resumed "
                        "from (default: OUT/recovery.json)")
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    args.json = args.json or args.out / "recovery.json"
    args.flips = {**CLASS_CONDITIONAL_FLIPS, **_pairs(parser, args.flip, "--flip", lambda v: tuple(v.split(":", 1)))}
    args.train_sizes = {**TRAIN_SIZES, **_pairs(parser, args.train_size_for, "--train-size-for",
                                                lambda v: None if v == "all" else int(v))}
    return args


def _pairs(parser: argparse.ArgumentParser, items: list[str], option: str, value: Callable[[str], Any]) -> dict:
    pairs = {}
    for item in items:
        name, _, raw = item.partition("=")
        try:
            pairs[name] = value(raw)
        except ValueError:
            parser.error(f"{option} {item!r}: bad value")
        if name not in NAMED_SETS or raw == "" or (option == "--flip" and len(pairs[name]) != 2):
            parser.error(f"{option} {item!r}: expected SET=VALUE with SET one of {list(NAMED_SETS)}")
    return pairs


def load_previous(args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """The cells a previous run with the same cell settings finished, and the finished parts of those it did not,
    by cell key."""
    if not args.json.exists():
        return [], {}
    previous = json.loads(args.json.read_text())
    settings = _cell_settings(args)
    if _with_settings_before(previous.get("cell_settings")) != settings:
        raise SystemExit(f"{args.json} holds cells run with other settings ({previous.get('cell_settings')}); "
                         "pass another --json or --out")
    return previous["cells"], previous.get("unfinished_cells", {})


def _with_settings_before(settings: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if settings is None else {**CELL_SETTINGS_BEFORE, **settings}


def _cell_settings(args: argparse.Namespace) -> dict[str, Any]:
    return json.loads(json.dumps({name: getattr(args, name) for name in CELL_SETTINGS}))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(stderr=True)
    started = time.perf_counter()
    command = " ".join(["python -m benchmarks.recovery", *(argv if argv is not None else sys.argv[1:])])
    run = merged_run(args, command) if args.merge else run_grids(args, command, console, started)
    run["summary"] = summarise(run["cells"])
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(run, args.json)
    (args.out / "recovery.md").write_text(markdown(run["summary"]))
    written = plots(run["summary"], args.out)
    print(markdown(run["summary"]))
    console.print(f"wrote {args.json}, {args.out / 'recovery.md'} and {len(written)} plots "
                  f"in {time.perf_counter() - started:.0f} s")
    return 0


def run_grids(args: argparse.Namespace, command: str, console: Console, started: float) -> dict[str, Any]:
    cells, unfinished = load_previous(args)
    done = {c["key"] for c in cells}
    run = {"command": command,
           "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
           "cell_settings": _cell_settings(args), "machine_at_start": machine(), "cells": cells,
           "summary": summarise(cells), "unfinished_cells": unfinished}
    grid = [spec for spec in grid_cells(args) if spec.key not in done]
    if done:
        console.print(f"resuming: {len(done)} cells already in {args.json}, {len(grid)} to run")
    with progress_display(console) as progress:
        for index, spec in enumerate(grid):
            progress("benchmark cells", index, len(grid))
            if spec.grid == "ranking":
                cell = run_ranking_cell(args, spec, progress)
            else:
                journal = CellJournal(unfinished.setdefault(spec.key, {}), lambda: write_json(run, args.json),
                                      args.json.parent / "unfinished" / f"{spec.key.replace('/', '-')}-round0.pt")
                cell = run_end_to_end_cell(args, spec, progress, journal)
                journal.close()
                unfinished.pop(spec.key)
            cells.append(cell)
            console.print(f"{spec.key}: clean {cell['accuracy']['clean']:.3f}, noisy {cell['accuracy']['noisy']:.3f}, "
                          f"{sum(cell['seconds'].values()):.0f} s")
            # Written after every cell, so an interrupted run keeps what it finished and a rerun resumes.
            run["summary"] = summarise(cells)
            run["wall_seconds"] = round(time.perf_counter() - started, 1)
            run["machine_at_end"] = machine()
            write_json(run, args.json)
    return run


def merged_run(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """The finished cells of grids run apart, as one run; their own runs' commands and machines stay with them."""
    runs = {folder: json.loads((folder / "recovery.json").read_text()) for folder in args.merge}
    settings = [_with_settings_before(run["cell_settings"]) for run in runs.values()]
    if any(s != settings[0] for s in settings):
        raise SystemExit("the grids to merge ran with different cell settings: their cells are not one protocol")
    cells = [cell for run in runs.values() for cell in run["cells"]]
    repeated = sorted(key for key, count in Counter(cell["key"] for cell in cells).items() if count > 1)
    if repeated:
        raise SystemExit(f"cells finished in more than one of the grids to merge: {', '.join(repeated)}")
    return {"command": command, "cell_settings": settings[0], "cells": cells,
            "merged": [{"folder": str(folder), **{key: run.get(key) for key in (
                "command", "machine_at_start", "wall_seconds", "unfinished_cells")}} for folder, run in runs.items()]}
