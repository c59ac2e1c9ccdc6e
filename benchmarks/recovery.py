"""Mislabel detection and recovery: every scoring method against every peer (the protocol
in docs/benchmarks.md, "Mislabel detection").

Two grids, each a list of cells (data set, kind of noise, rate p, seed):

- ranking: train on the clean labels, then on the noisy ones; rank the noisy training set with every
  method and peer from that one training run (the same checkpoints, the logits recorded while training,
  the backbone's embeddings, confident learning's K fold models and their ensemble, and for synthetic
  noise a clairvoyant ceiling: the loss of the given label under the clean-label model). AUROC,
  precision@k and recall@k of the flipped (or, on ConvAbuse, disputed) labels; where there are more than
  two classes, relabel accuracy: the share of flagged flips whose suggested label is the true one.
- end to end: at the same total budget of R rounds of k, the test accuracy of G-BAIR's rounds with each
  flagger, of one-shot "flag R·k once, retrain once", and of the clean-label model (on ConvAbuse: trained
  without the disputed rows); the flips G-BAIR found in R rounds against the one-shot top R·k; and G-BAIR
  with the trusted set split into a scoring part and a round-selection part. With --training-seeds N, each
  of these test accuracies is the mean of N trainings of the same set from other initial prompts and batch
  orders: one training's luck moves test accuracy by about as much as the runs differ.

Noise: uniform (a fraction p flipped to a random other class), class-conditional (a fraction p of one
named class flipped to another, `--flip`), and real (ConvAbuse's majority labels, disputed rows as the
ground truth). The JSON is rewritten after every cell and a rerun with the same settings skips the cells
it already holds; an end-to-end cell also writes each recovery into it as the recovery finishes, so a
rerun, even on another machine, resumes the cell from there (round 0 is kept in a file beside it).

    python -m benchmarks.recovery --quick --out /tmp/recovery-quick
    python -m benchmarks.recovery --out docs/results/recovery-full   # the full protocol: days on a CPU
    python -m benchmarks.recovery --merge runs/seed0 runs/seed1 --out runs/seeds   # one summary of grids run apart
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, get_args

import numpy as np
import torch
from rich.console import Console
from scipy.stats import binom

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
from benchmarks.stage_cache import CachedBackend
from gbair.cli.display import progress_display
from gbair.core.backend import LocalBackend
from gbair.core.config import CleaningAction, GbairConfig, ScoringMethod
from gbair.core.confident_learning import FOLD_METHODS, fold_training_sets, out_of_sample_fit, stratified_folds
from gbair.core.data import NAMED_SETS, corrupt_labels, load_splits, true_label_names
from gbair.core.data.dataset import DataSplits, TextDataset
from gbair.core.evaluation import accuracy, log_losses, most_probable_other, paired_change_p_value
from gbair.core.influence import (
    INFLUENCE_METHODS,
    NEEDS_INITIAL_STATE,
    RELABEL_BY_MODEL,
    InfluenceStatistics,
    suspicion_scores,
)
from gbair.core.influence.methods import (
    final_loss,
    mean_loss,
    opposition_and_loss,
    shows_class_conditional_marks,
    standardise_within,
    tracin,
)
from gbair.core.model.inputs import EncodedSet
from gbair.core.neighbours import neighbour_labels
from gbair.core.progress import Progress, no_progress
from gbair.core.recovery import Recovery
from gbair.core.recovery_state import RecoveryState, TrainedRound
from gbair.core.report import RecoveryReport, RoundReport
from gbair.core.training import initial_checkpoint, training_seeds
from gbair.core.training_dynamics import area_under_the_margin, cartography, most_probable_other_label

# How unlikely a class's share of the validation errors must be, were errors spread in proportion to the
# classes, before `tracin-class-loss-pile-up-test` reads a class-wide bias; divided by the number of classes
# (Bonferroni), so that many classes do not make one of them look biased by chance.
ERRORS_PILE_UP_SIGNIFICANCE = 0.05
# McNemar's p below which a round-to-round change of validation accuracy counts as significant.
SIGNIFICANCE = 0.05


def errors_pile_up(query_labels: torch.Tensor, trusted_labels: torch.Tensor, num_classes: int) -> bool:
    """Whether the misclassified trusted examples (`query_labels`) pile up in some class beyond chance: a
    one-sided binomial test of each class's error count against the whole trusted set's error rate."""
    trusted = torch.bincount(trusted_labels, minlength=num_classes).numpy()
    errors = torch.bincount(query_labels, minlength=num_classes).numpy()
    if errors.sum() == 0:
        return False
    chance_of_as_many = binom.sf(errors - 1, trusted, errors.sum() / trusted.sum())
    return bool((chance_of_as_many < ERRORS_PILE_UP_SIGNIFICANCE / num_classes).any())


def tracin_class_loss_where_errors_pile_up(stats: InfluenceStatistics, trusted_labels: torch.Tensor) -> torch.Tensor:
    """The ungated default where the validation errors pile up in some class, else every example's loss
    averaged over the checkpoints: the opposition read only on evidence of a class-wide bias."""
    if errors_pile_up(stats.query_labels, trusted_labels, stats.final_logits.shape[1]):
        return opposition_and_loss(stats)
    return mean_loss(stats)


# Measured here only, each from the statistics and the trusted set's labels: what closes the gap of the plain
# sum (README, "Scoring methods": why the plain sum cancels), the loss averaged over checkpoints alone, the
# default before it looked for the marks of class-conditional noise (`-ungated`), that one with the final loss
# read alone too or the averaged loss beside the opposition too, and it read only where the validation errors
# pile up in a class.
VARIANTS: dict[str, Callable[[InfluenceStatistics, torch.Tensor], torch.Tensor]] = {
    "tracin-within-class": lambda stats, _: standardise_within(tracin(stats), stats.train_labels),
    "mean-loss": lambda stats, _: mean_loss(stats),
    "tracin-class-loss-ungated": lambda stats, _: opposition_and_loss(stats),
    "tracin-class-final-loss": lambda stats, _: opposition_and_loss(stats, loss_alone=final_loss(stats)),
    "tracin-class-mean-loss": lambda stats, _: opposition_and_loss(stats, loss=mean_loss(stats)),
    "tracin-class-loss-pile-up-test": tracin_class_loss_where_errors_pile_up,
}
# Variants that suggest labels as the default does, from the model's probabilities of the flagged examples.
VARIANTS_RELABEL_BY_MODEL = {"mean-loss", "tracin-class-loss-ungated", "tracin-class-final-loss", "tracin-class-mean-loss",
                             "tracin-class-loss-pile-up-test"}
CLAIRVOYANT = "clairvoyant"
# Every ranking scored. `cartography-variability` is ranked but not a --method: variability marks ambiguous
# examples, a different thing from mislabeled ones; `clairvoyant` needs the true labels (synthetic noise only).
RANKED = [*INFLUENCE_METHODS, *VARIANTS, "aum", "cartography", "cartography-variability", "knn",
          "confident-learning", "ensemble", CLAIRVOYANT]
NOISE_KINDS = ("uniform", "class-conditional", "real")
# Which way annotators err, per data set: missed harm (Unsafe -> Safe), missed offence, missed praise.
CLASS_CONDITIONAL_FLIPS = {"diasafety": ("Unsafe", "Safe"), "sst2": ("positive", "negative"), "olid": ("OFF", "NOT")}
# Sets whose labels already hold real, measurable noise: disputed rows are the ground truth.
REAL_NOISE = {"convabuse"}
# Training sizes that differ from --train-size (None: the whole training split).
TRAIN_SIZES: dict[str, int | None] = {"banking77": 5000, "convabuse": None}
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


@dataclasses.dataclass(frozen=True)
class CellSpec:
    grid: str
    dataset: str
    noise: str
    corruption: float | None
    seed: int

    @property
    def key(self) -> str:
        rate = "" if self.corruption is None else f"/p{self.corruption}"
        return f"{self.grid}/{self.dataset}/{self.noise}{rate}/seed{self.seed}"


@dataclasses.dataclass(frozen=True)
class NoisyData:
    """The splits with the noisy training labels, which ids are wrong (flipped or disputed), the true label of
    each flipped id (empty for real noise: unknown), and the training set of the clean-label reference."""

    splits: DataSplits
    wrong_ids: list[str]
    true_labels: dict[str, str]
    reference_train: TextDataset


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grids", nargs="+", choices=["ranking", "end-to-end"], default=["ranking", "end-to-end"])
    parser.add_argument("--datasets", nargs="+", choices=NAMED_SETS, default=list(NAMED_SETS),
                        help="ranking grid's data sets; SST-2 and OLID come from `gbair data fetch sst2 olid` "
                        "(real noise on " + ", ".join(sorted(REAL_NOISE)) + ")")
    parser.add_argument("--noise", nargs="+", choices=NOISE_KINDS[:2], default=list(NOISE_KINDS[:2]),
                        help="synthetic noise kinds of the ranking grid; a set without a --flip pair skips class-conditional")
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


def grid_cells(args: argparse.Namespace) -> list[CellSpec]:
    """Seeds outermost: a run stopped early still covers every cell with the seeds it finished."""
    cells = []
    for seed in args.seeds:
        if "ranking" in args.grids:
            for dataset in args.datasets:
                for noise, rate in _noise_settings(args, dataset, args.noise):
                    cells.append(CellSpec("ranking", dataset, noise, rate, seed))
        if "end-to-end" in args.grids:
            for item in args.end_to_end:
                dataset, _, noise = item.partition(":")
                if dataset in NAMED_SETS:
                    for noise_kind, rate in _noise_settings(args, dataset, [noise]):
                        cells.append(CellSpec("end-to-end", dataset, noise_kind, rate, seed))
    return cells


def _noise_settings(args: argparse.Namespace, dataset: str, kinds: list[str]) -> list[tuple[str, float | None]]:
    if dataset in REAL_NOISE:
        return [("real", None)]
    kinds = [k for k in kinds if k == "uniform" or (k == "class-conditional" and dataset in args.flips)]
    return [(kind, rate) for kind in kinds for rate in args.corruption]


def build_config(args: argparse.Namespace, seed: int, **recovery: Any) -> GbairConfig:
    method = recovery.pop("method", args.gbair_method)
    return GbairConfig(
        model={"name_or_path": args.model, "max_length": args.max_length},
        train={"epochs": args.epochs, "checkpoints_per_epoch": args.checkpoints_per_epoch, "seed": seed},
        influence={"method": method, "seed": seed, "confident_learning_folds": args.folds,
                   "knn_neighbours": args.knn_neighbours},
        recovery={"rounds": args.rounds, "patience": args.patience, "budget": args.budget,
                  "round_trainings": args.round_trainings, **recovery},
    )


def cached_backend(args: argparse.Namespace, config: GbairConfig, local: LocalBackend) -> CachedBackend:
    """`local` computes with `config`'s model and training settings; a cell's recoveries differ in others."""
    return CachedBackend(local, args.stage_cache, config)


def noisy_data(args: argparse.Namespace, spec: CellSpec) -> NoisyData:
    splits = load_splits(spec.dataset, data_dir=args.data_dir, train_size=args.train_sizes.get(spec.dataset, args.train_size),
                         val_size=args.val_size, seed=spec.seed)
    if args.test_size is not None and splits.test is not None and args.test_size < len(splits.test):
        chosen = np.sort(np.random.default_rng(spec.seed).choice(len(splits.test), args.test_size, replace=False))
        splits = dataclasses.replace(splits, test=splits.test.subset(chosen.tolist()))
    if spec.noise == "real":
        from gbair.core.data.annotations import disputed_ids  # comes with the ConvAbuse loader

        disputed = disputed_ids(splits.train)
        return NoisyData(splits, disputed, {}, splits.train.without_ids(disputed))
    source, target = args.flips[spec.dataset] if spec.noise == "class-conditional" else (None, None)
    noisy, flipped = corrupt_labels(splits.train, spec.corruption, seed=spec.seed, source=source, target=target)
    return NoisyData(dataclasses.replace(splits, train=noisy), flipped, true_label_names(splits.train, flipped),
                     splits.train)


class CellRun:
    """One cell's shared classifier (in a local backend), its untrained state and timings."""

    def __init__(self, args: argparse.Namespace, spec: CellSpec, progress: Progress):
        self.args, self.spec, self.progress = args, spec, progress
        self.data = noisy_data(args, spec)
        self.config = build_config(args, spec.seed)
        self.local = LocalBackend(self.config, self.data.splits.label_names)
        self.initial = self.local.initial_state
        self.backends = [cached_backend(args, self.config, self.local)]
        self.backend = self.backends[0]
        self.test = self.backend.encode(self.data.splits.test)
        self.seconds: dict[str, float] = {}
        self.computed_in_workers = 0

    def timed(self, name: str, work: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        result = work()
        self.seconds[name] = round(time.perf_counter() - started, 2)
        return result

    def train_and_test(self, train: EncodedSet, training_seed: int | None = None):
        """Train from the initial prompt and batch order `training_seed` (default: the cell's) draws."""
        seed = self.spec.seed if training_seed is None else training_seed
        start = self.initial if seed == self.spec.seed else self.backend.seeded_state(seed)
        training = self.backend.train(start, train, self.progress, seed)
        return training, accuracy(self.backend.probabilities(training.final_state, self.test), self.test.labels)

    def training_seeds(self) -> list[int]:
        """The cell's own seed, then --training-seeds − 1 others."""
        return training_seeds(self.spec.seed, self.args.training_seeds)

    def clean_accuracy(self) -> tuple[float, float, dict[str, int]]:
        """The clean-label model's test accuracy, and the seconds and passes its training took."""
        before = self.backend.passes()
        started = time.perf_counter()
        _, clean_accuracy = self.train_and_test(self.backend.encode(self.data.reference_train))
        after = self.backend.passes()
        return clean_accuracy, round(time.perf_counter() - started, 2), {key: after[key] - before[key] for key in after}

    def recovery(self, **recovery: Any) -> Recovery:
        config = build_config(self.args, self.spec.seed, **recovery)
        self.backends.append(cached_backend(self.args, config, self.local))
        return Recovery(self.data.splits, config, backend=self.backends[-1])

    def header(self) -> dict[str, Any]:
        splits = self.data.splits
        return {
            "key": self.spec.key, **dataclasses.asdict(self.spec),
            "sizes": {"train": len(splits.train), "validation": len(splits.validation), "test": len(splits.test)},
            "wrong_labels": len(self.data.wrong_ids), "classes": len(splits.label_names),
        }

    def train_in_workers(self, trainings: list[EncodedSet]) -> None:
        """Train each set from the initial state in a pool of --workers processes, into the stage cache, where
        this process's own training passes then find them."""
        with worker_pool(self.args, self.spec) as pool:
            self.computed_in_workers += sum(pool.map(_train_in_worker, trainings))

    def passes(self) -> dict[str, int]:
        """Training and influence passes computed (here or by workers), and taken from an earlier, interrupted
        run's stage cache (whose time is not in `seconds`)."""
        hits = sum(b.hits for b in self.backends)
        return {"computed": sum(b.misses for b in self.backends) + self.computed_in_workers,
                "from_cache": hits - self.computed_in_workers}


def run_ranking_cell(args: argparse.Namespace, spec: CellSpec, progress: Progress) -> dict[str, Any]:
    run = CellRun(args, spec, progress)
    splits, backend = run.data.splits, run.backend
    reference = backend.encode(run.data.reference_train)
    train = backend.encode(splits.train)
    if args.workers > 1:
        trainings = [reference, train]
        if FOLD_METHODS & set(args.methods):
            trainings += fold_training_sets(train, stratified_folds(train.labels.numpy(), args.folds, spec.seed))
        run.timed("trainings_in_workers", lambda: run.train_in_workers(trainings))
    clean, clean_accuracy = run.timed("train_clean", lambda: run.train_and_test(reference))
    clean_probabilities = backend.probabilities(clean.final_state, train).double() if run.data.true_labels else None
    training, noisy_accuracy = run.timed("train_noisy", lambda: run.train_and_test(train))
    validation = backend.encode(splits.validation)
    final_probabilities = backend.probabilities(training.final_state, validation)
    errors = (final_probabilities.argmax(1) != validation.labels).nonzero().flatten().tolist()
    queries = backend.query_gradients(training.checkpoints, validation.subset(errors))

    def statistics(checkpoints, query):
        return backend.training_statistics(checkpoints, train, query, progress)

    stats = run.timed("influence", lambda: statistics(training.checkpoints, queries))
    initial_stats = None
    if NEEDS_INITIAL_STATE.intersection(args.methods):
        start = [initial_checkpoint(run.initial)]
        initial_stats = run.timed("influence_initial_state", lambda: statistics(
            start, backend.query_gradients(start, validation.subset(errors))))
    labels = train.labels
    given = labels.numpy()

    def from_probabilities(probabilities: torch.Tensor) -> Callable[[list[int]], list[int]]:
        return lambda positions: most_probable_other(probabilities[positions], labels[positions])

    def from_training(positions: list[int]) -> list[int]:
        return most_probable_other_label(training, labels, positions)

    def from_model(positions: list[int]) -> list[int]:
        """As the recovery does: the noisy model's probabilities of the flagged examples only."""
        return most_probable_other(backend.probabilities(training.final_state, train.subset(positions)), labels[positions])

    def from_tracin(positions: list[int]) -> list[int]:
        return backend.suggest_labels(training.checkpoints, train.subset(positions), queries)

    # method -> (suspicion scores, how it suggests labels); None where it suggests none.
    rankings: dict[str, tuple[np.ndarray, Callable | None]] = {}
    for method in INFLUENCE_METHODS:
        if method in args.methods:
            scores = suspicion_scores(stats, method, vote_top_fraction=run.config.influence.vote_top_fraction,
                                      seed=spec.seed, initial=initial_stats, trusted_labels=validation.labels)
            # TracIn's relabel is many gradient passes per example and label: scored for G-BAIR's method only.
            suggest = from_model if method in RELABEL_BY_MODEL else from_tracin
            rankings[method] = (scores, suggest if method == args.gbair_method else None)
    for name, variant in VARIANTS.items():
        if name in args.methods:
            rankings[name] = (variant(stats, validation.labels).numpy(), from_model if name in VARIANTS_RELABEL_BY_MODEL else None)
    if "loss" in rankings:
        rankings["loss"] = (rankings["loss"][0], from_training)
    rankings["aum"] = (area_under_the_margin(training, labels), from_training)
    confidence, variability = cartography(training, labels)
    rankings["cartography"] = (1.0 - confidence, from_training)
    rankings["cartography-variability"] = (variability, from_training)
    if "knn" in args.methods:
        embeddings = run.timed("embeddings", lambda: backend.embeddings(train, progress))
        neighbours = neighbour_labels(embeddings, given, args.knn_neighbours, len(splits.label_names))
        rankings["knn"] = (neighbours.suspicion_scores(), neighbours.suggested_labels)
    if FOLD_METHODS & set(args.methods):
        fit = run.timed("folds", lambda: out_of_sample_fit(backend, train, args.folds, spec.seed, progress))
        rankings["confident-learning"] = (fit.suspicion_scores(), fit.suggested_labels)
        rankings["ensemble"] = (fit.ensemble_suspicion_scores(), lambda p: fit.suggested_labels(p, ensemble=True))
    if clean_probabilities is not None:
        # The loss of the given label under the model trained on the true labels: a ceiling, not a method.
        clairvoyant = log_losses(clean_probabilities, labels).numpy()
        rankings[CLAIRVOYANT] = (clairvoyant, from_probabilities(clean_probabilities))

    is_wrong = np.isin(train.ids, run.data.wrong_ids)
    flag_count = run.config.recovery.flag_count(len(train))
    label_index = {name: k for k, name in enumerate(splits.label_names)}
    methods = {}
    for method, (scores, suggest) in rankings.items():
        if method not in args.methods:
            continue
        metrics = ranking_metrics(scores, is_wrong, flag_count)
        # With two classes the only other label is the true one: relabel accuracy says nothing there.
        if suggest is not None and run.data.true_labels and len(splits.label_names) > 2:
            flagged = np.argsort(-scores, kind="stable")[:flag_count]
            flips = [int(p) for p in flagged if is_wrong[p]]
            suggested = suggest(flips) if flips else []
            truth = [label_index[run.data.true_labels[train.ids[p]]] for p in flips]
            metrics["relabel_accuracy"] = float(np.mean(np.equal(suggested, truth))) if flips else None
        methods[method] = metrics
    # Whether the default read the opposition here (the marks of class-conditional noise) or the averaged loss.
    marks = shows_class_conditional_marks(stats, validation.labels)
    return {
        **run.header(), "misclassified_val": len(errors), "checkpoints": len(training.checkpoints),
        "class_conditional_marks": marks, "accuracy": {"clean": clean_accuracy, "noisy": noisy_accuracy},
        "methods": methods, "seconds": run.seconds, "passes": run.passes(),
    }


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


_worker_cell: CellRun | None = None


def _start_worker(args: argparse.Namespace, spec: CellSpec) -> None:
    """A worker builds the cell's data and classifier once, with one torch thread: the pool is the parallelism."""
    global _worker_cell
    torch.set_num_threads(1)
    _worker_cell = CellRun(args, spec, no_progress)


def _workers_cell() -> CellRun:
    assert _worker_cell is not None, "the pool's initializer builds the cell"
    return _worker_cell


def worker_pool(args: argparse.Namespace, spec: CellSpec) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker, initargs=(args, spec))


def _train_in_worker(train: EncodedSet) -> int:
    """1 if the pass was computed, 0 if the stage cache held it."""
    cell = _workers_cell()
    before = cell.backend.misses
    cell.backend.train(cell.initial, train, no_progress)
    return cell.backend.misses - before


def _clean_accuracy_in_worker() -> tuple[float, float, dict[str, int]]:
    return _workers_cell().clean_accuracy()


def _run_in_worker(which: EndToEndRun, k: int, start: RecoveryState, round_zero: TrainedRound) -> EndToEndResult:
    return run_end_to_end(_workers_cell(), which, k, start, round_zero, no_progress)


def _test_accuracy_in_worker(train: EncodedSet, training_seed: int) -> float:
    return _workers_cell().train_and_test(train, training_seed)[1]


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
                self.futures[content, seed] = self.pool.submit(_test_accuracy_in_worker, encoded, seed)

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
            clean = pool.submit(_clean_accuracy_in_worker) if journal.clean() is None else None
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
            "recovered_fraction": _recovered(clean_accuracy, noisy_accuracy, test_accuracy),
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


def _recovered(clean: float, noisy: float, after: float) -> float | None:
    """Undefined when the noise did not lower accuracy."""
    return (after - noisy) / (clean - noisy) if clean > noisy else None


def _mean_std_of(values: list[float | None]) -> dict[str, float] | None:
    present = [v for v in values if v is not None]
    return mean_std(present) if present else None


def summarise(cells: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Mean ± std over seeds, per grid, data set, kind of noise and rate."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for cell in cells:
        groups[(cell["grid"], cell["dataset"], cell["noise"], cell["corruption"])].append(cell)
    summaries: dict[str, list[dict[str, Any]]] = {"ranking": [], "end-to-end": []}
    for (grid, dataset, noise, rate), group in groups.items():
        summary: dict[str, Any] = {
            "dataset": dataset, "noise": noise, "corruption": rate, "seeds": [c["seed"] for c in group],
            "accuracy": {name: mean_std([c["accuracy"][name] for c in group]) for name in ("clean", "noisy")},
            "methods": {},
        }
        if grid == "ranking":
            # Cells from before the field was recorded say nothing: None.
            found = [c.get("class_conditional_marks") for c in group]
            summary["class_conditional_marks"] = None if None in found else sum(found)
        for method in dict.fromkeys(m for c in group for m in c["methods"]):
            # Seeds run apart may have asked for other flaggers: each is averaged over the seeds that ran it.
            metrics = [c["methods"][method] for c in group if method in c["methods"]]
            if grid == "ranking":
                summary["methods"][method] = {
                    **{name: mean_std([m[name] for m in metrics]) for name in ("auroc", "precision_at_k", "recall_at_k")},
                    "relabel_accuracy": _mean_std_of([m.get("relabel_accuracy") for m in metrics]),
                    "k": metrics[0]["k"],
                    "flips_found_curve": np.mean([m["flips_found_curve"] for m in metrics], axis=0).round(4).tolist(),
                }
            else:
                # A --one-shot-methods flagger has no G-BAIR rounds: its entry holds only "one_shot".
                runs = {"rounds": [m for m in metrics if "test_accuracy" in m],
                        "one_shot": [m["one_shot"] for m in metrics if "one_shot" in m]}
                summary["methods"][method] = {
                    run: {name: _mean_std_of([m[name] for m in found])
                          for name in ("test_accuracy", "recovered_fraction", "flips_found", "flagged", "relabel_accuracy")}
                    for run, found in runs.items() if found
                }
                if runs["rounds"]:
                    summary["methods"][method]["rounds"]["validation_follows_test"] = _validation_follows_test(
                        [m["rounds"] for m in runs["rounds"]])
        if grid == "end-to-end":
            splits = [c["split_trusted_set"] for c in group if c["split_trusted_set"]]
            summary["split_trusted_set"] = {
                name: _mean_std_of([s[name] for s in splits]) for name in ("test_accuracy", "recovered_fraction")
            } if splits else None
            summary["k"], summary["rounds"] = group[0]["k"], group[0]["rounds"]
            # Cells from before --training-seeds trained each kept set once.
            summary["training_seeds"] = len(group[0].get("training_seeds", [group[0]["seed"]]))
        summaries[grid].append(summary)
    return summaries


def _cell(summary: dict[str, float] | None, digits: int = 3) -> str:
    return "–" if summary is None else format_mean_std(summary, digits)


def markdown(summaries: dict[str, list[dict[str, Any]]]) -> str:
    """One ranking table per kind of noise (a column pair per data set and rate, methods by mean AUROC), then
    the end-to-end table and the iteration table."""
    text = ""
    for noise in NOISE_KINDS:
        group = [s for s in summaries["ranking"] if s["noise"] == noise]
        if not group:
            continue
        columns = [s["dataset"] + _rate(s) for s in group]
        methods = sorted({m for s in group for m in s["methods"]},
                         key=lambda m: -np.mean([s["methods"][m]["auroc"]["mean"] for s in group if m in s["methods"]]))
        header = ["method"] + [f"{c} {metric}" for c in columns for metric in ("AUROC", "P@k", "relabel acc")]
        rows = []
        for method in methods:
            row = [f"`{method}`"]
            for s in group:
                m = s["methods"].get(method)
                row += ["–"] * 3 if m is None else [
                    _cell(m["auroc"]), _cell(m["precision_at_k"]), _cell(m["relabel_accuracy"])]
            rows.append(row)
        ks = ", ".join(f"{c}: k={next(iter(s['methods'].values()))['k']}, seeds {len(s['seeds'])}{_marks(s)}"
                       for c, s in zip(columns, group))
        target = "disputed rows" if noise == "real" else "flipped labels"
        text += f"## Ranking, {noise} noise: {target} found by the first model ({ks})\n\n" + markdown_table(header, rows) + "\n"
    end_to_end = summaries["end-to-end"]
    if end_to_end:
        text += _end_to_end_markdown(end_to_end)
    return text


def _marks(summary: dict[str, Any]) -> str:
    found = summary.get("class_conditional_marks")
    return "" if found is None else f", marks found at {found}"


def _rate(summary: dict[str, Any]) -> str:
    return "" if summary["corruption"] is None else f" p={summary['corruption']}"


def _validation_follows_test(runs: list[list[dict[str, Any]]]) -> dict[str, int]:
    """Of the steps from one round to the next that changed test accuracy, how many changed validation
    accuracy the same way: how well the trusted set can choose the round. The same among the steps whose
    validation change McNemar's test finds significant (p < SIGNIFICANCE), where the rounds recorded which
    trusted examples they got wrong."""
    steps = [(after["val_accuracy"] - before["val_accuracy"], after["test_accuracy"] - before["test_accuracy"],
              paired_change_p_value(before.get("val_wrong_ids"), after.get("val_wrong_ids")))
             for rounds in runs for before, after in zip(rounds, rounds[1:])]
    moved = [(val, test, p) for val, test, p in steps if test != 0]
    significant = [(val, test) for val, test, p in moved if p is not None and p < SIGNIFICANCE]
    return {"same_way": int(sum(np.sign(val) == np.sign(test) for val, test, _ in moved)), "steps": len(moved),
            "significant_same_way": int(sum(np.sign(val) == np.sign(test) for val, test in significant)),
            "significant_steps": len(significant)}


def _fewer_seeds(value: dict[str, float], summary: dict[str, Any]) -> str:
    return f" ({value['n']} of {len(summary['seeds'])} seeds)" if value["n"] < len(summary["seeds"]) else ""


def _trainings(summary: dict[str, Any]) -> str:
    trainings = summary.get("training_seeds", 1)  # absent from summaries written before --training-seeds
    return "" if trainings == 1 else f", each kept set's test accuracy the mean of {trainings} trainings"


def _cell_name(summary: dict[str, Any]) -> str:
    return f"{summary['dataset']} {summary['noise']}" + _rate(summary)


def _end_to_end_markdown(cells: list[dict[str, Any]]) -> str:
    """The end-to-end table (a run per row, a column pair per cell) and the iteration table (a flagger per row)."""
    names = [_cell_name(s) for s in cells]
    budgets = "; ".join(f"{name}: {s['rounds']} rounds of {s['k']} or one shot of {s['rounds'] * s['k']}, "
                        f"seeds {len(s['seeds'])}" + _trainings(s) for name, s in zip(names, cells))
    methods = list(dict.fromkeys(m for s in cells for m in s["methods"]))

    def row(label: str, pick: Callable[[dict[str, Any]], dict[str, Any] | None]) -> list[str]:
        values = [pick(s) for s in cells]
        return [label] + [part for s, v in zip(cells, values) for part in (
            ("–", "–") if v is None else (_cell(v["test_accuracy"]) + _fewer_seeds(v["test_accuracy"], s),
                                          _cell(v["recovered_fraction"], 2)))]

    def accuracy(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
        def pick(s: dict[str, Any]) -> dict[str, Any]:
            # 1 for clean, 0 for noisy; undefined, as in every run's row, where the noise cost nothing.
            recovered = _recovered(*(s["accuracy"][key]["mean"] for key in ("clean", "noisy", name)))
            return {"test_accuracy": s["accuracy"][name],
                    "recovered_fraction": None if recovered is None else {"mean": recovered, "n": 1}}
        return pick

    rows = [row("clean labels (real noise: disputed rows removed)", accuracy("clean")),
            row("noisy labels (round 0)", accuracy("noisy"))]
    for method in methods:
        for run, label in (("rounds", f"G-BAIR, `{method}`"), ("one_shot", f"one shot, `{method}`")):
            if any(run in s["methods"].get(method, {}) for s in cells):
                rows.append(row(label, lambda s, m=method, r=run: s["methods"].get(m, {}).get(r)))
    rows.append(row("G-BAIR, trusted set split into scoring and round selection", lambda s: s["split_trusted_set"]))
    header = ["run"] + [f"{name} {column}" for name in names for column in ("test acc", "recovered")]

    def found(run: dict[str, Any] | None) -> str:
        return "–" if run is None else f"{_cell(run['flips_found'], 0)} / {_cell(run['flagged'], 0)}"

    iterated = [method for method in methods if any("rounds" in s["methods"].get(method, {}) for s in cells)]
    iteration = [[f"`{method}`"] + [found(s["methods"].get(method, {}).get(run)) for s in cells
                                    for run in ("rounds", "one_shot")]
                 for method in iterated]

    def follows(run: dict[str, Any] | None) -> str:
        counts = (run or {}).get("validation_follows_test")  # absent from results written before it was counted
        if counts is None:
            return "–"
        # Absent from results written before the rounds recorded their misclassified trusted examples.
        significant = counts.get("significant_steps")
        return f"{counts['same_way']} / {counts['steps']}" + (
            "" if not significant else f" (significant: {counts['significant_same_way']} / {significant})")

    choosing = [[f"`{method}`"] + [follows(s["methods"].get(method, {}).get("rounds")) for s in cells]
                for method in iterated]
    return ("## End to end: test accuracy at the same total budget (G-BAIR: best round by validation; one shot: "
            f"the retrained model; {budgets})\n\n" + markdown_table(header, rows) + "\n"
            + "## Iterating: wrong labels found / flagged in R rounds against one shot of R·k\n\n"
            + markdown_table(["flagger"] + [f"{name} {run}" for name in names for run in ("G-BAIR", "one shot")],
                             iteration) + "\n"
            + "## Choosing the round: steps from one round to the next where validation accuracy moved the way "
            "test accuracy did / steps that moved test accuracy (in brackets the same for the steps whose "
            f"validation change is significant, McNemar's p < {SIGNIFICANCE})\n\n"
            + markdown_table(["flagger"] + names, choosing))


def plots(summaries: dict[str, list[dict[str, Any]]], folder: Path) -> list[Path]:
    written = []
    inspected = np.linspace(0, 1, CURVE_POINTS).tolist()
    for s in summaries["ranking"]:
        name = f"{s['dataset']}-{s['noise']}" + ("" if s["corruption"] is None else f"-p{s['corruption']}")
        curves = {method: (inspected, m["flips_found_curve"]) for method, m in s["methods"].items()}
        written.append(line_plot(
            curves, folder / f"flips-found-{name}.png", diagonal=True,
            title=f"{name}: wrong labels found by the first model",
            xlabel="fraction of the training set inspected, most suspicious first", ylabel="fraction found",
        ))
    return written


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


if __name__ == "__main__":
    raise SystemExit(run_main(main))
