"""A benchmark cell (data set, kind of noise, rate, seed): its noisy data, its shared classifier and
stage-cached backend, and the pool of worker processes that share its trainings."""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import torch

from benchmarks.stage_cache import CachedBackend
from gbair.core.backend import LocalBackend
from gbair.core.config import GbairConfig
from gbair.core.data import NAMED_SETS, corrupt_labels, load_splits, pair_flips, true_label_names
from gbair.core.data.dataset import DataSplits, TextDataset
from gbair.core.evaluation import accuracy
from gbair.core.model.inputs import EncodedSet
from gbair.core.progress import Progress, no_progress
from gbair.core.recovery import Recovery
from gbair.core.training import training_seeds

NOISE_KINDS = ("uniform", "class-conditional", "pair", "real")
# The noise kinds a synthetic grid runs unless told otherwise; pair flipping is for sets of many classes.
DEFAULT_NOISE = ("uniform", "class-conditional")
# Which way annotators err, per data set: missed harm (Unsafe -> Safe), missed offence, missed praise.
CLASS_CONDITIONAL_FLIPS = {"diasafety": ("Unsafe", "Safe"), "sst2": ("positive", "negative"), "olid": ("OFF", "NOT")}
# Sets whose labels already hold real, measurable noise: disputed rows are the ground truth.
REAL_NOISE = {"convabuse"}
# Training sizes that differ from --train-size (None: the whole training split).
TRAIN_SIZES: dict[str, int | None] = {"banking77": 5000, "convabuse": None}


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
    kinds = [k for k in kinds if k != "class-conditional" or dataset in args.flips]
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
    flips = _synthetic_flips(args, spec, splits.train)
    noisy, flipped = corrupt_labels(splits.train, spec.corruption, seed=spec.seed, flips=flips)
    return NoisyData(dataclasses.replace(splits, train=noisy), flipped, true_label_names(splits.train, flipped),
                     splits.train)


def _synthetic_flips(args: argparse.Namespace, spec: CellSpec, train: TextDataset) -> dict[str, str] | None:
    """Which classes the cell's noise turns into which; None for uniform noise."""
    if spec.noise == "class-conditional":
        source, target = args.flips[spec.dataset]
        return {source: target}
    return pair_flips(train) if spec.noise == "pair" else None


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


_worker_cell: CellRun | None = None


def _start_worker(args: argparse.Namespace, spec: CellSpec) -> None:
    """A worker builds the cell's data and classifier once, with one torch thread: the pool is the parallelism."""
    global _worker_cell
    torch.set_num_threads(1)
    _worker_cell = CellRun(args, spec, no_progress)


def workers_cell() -> CellRun:
    assert _worker_cell is not None, "the pool's initializer builds the cell"
    return _worker_cell


def worker_pool(args: argparse.Namespace, spec: CellSpec) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker, initargs=(args, spec))


def _train_in_worker(train: EncodedSet) -> int:
    """1 if the pass was computed, 0 if the stage cache held it."""
    cell = workers_cell()
    before = cell.backend.misses
    cell.backend.train(cell.initial, train, no_progress)
    return cell.backend.misses - before


def clean_accuracy_in_worker() -> tuple[float, float, dict[str, int]]:
    return workers_cell().clean_accuracy()


def retrained_accuracy_in_worker(train: EncodedSet, training_seed: int) -> float:
    return workers_cell().train_and_test(train, training_seed)[1]
