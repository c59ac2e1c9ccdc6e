"""One G-BAIR round at growing training-set sizes, in process and on Ray: the time of each phase and the
peak memory of each process, then the scoring throughput of one and two Serve replicas.

The training sets are OLID's training file less 500 validation rows (12,740 rows), repeated under new ids
as often as needed and cut to each size. A round is what a job does per round: train,
evaluate on the validation set, take the validation errors' gradients, score the training set, suggest
labels for the flagged. Each round runs in a fresh process, which on Ray plays the coordinator (it holds
no model) while a local cluster does the rest; a sampler records the peak RSS of that process and of
every Ray process by role. Prints a table and writes JSON.

    .venv/bin/python -m benchmarks.scale --quick --json benchmarks/results/scale-quick.json
    .venv/bin/python -m benchmarks.scale --sizes 2000 13240 40000 --json benchmarks/results/scale.json
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import torch
from rich.console import Console
from rich.table import Table

from benchmarks.common import machine, process_role, run_main, write_json
from benchmarks.scaling import SCORING_SIZE, measure_scoring
from gbair.core.backend import LocalBackend, RoundBackend
from gbair.core.config import GbairConfig
from gbair.core.data import DataSplits, TextDataset, load_splits
from gbair.core.recovery import Recovery

GIB = 1024**3
PHASES = {"train": "train", "train_each": "train", "probabilities": "evaluate",
          "query_gradients": "query gradients", "training_statistics": "score", "suggest_labels": "relabel",
          "encode": "encode"}
"""Backend method -> the phase of a round its time counts to."""
VALIDATION_SIZE = 500


class TimedBackend:
    """A backend whose calls add their wall time to their phase. On Ray the query gradients come back as a
    reference at once; their time counts once they exist."""

    def __init__(self, inner: RoundBackend):
        self.inner = inner
        self.seconds: dict[str, float] = defaultdict(float)

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet: no recursion through the line below
            raise AttributeError(name)
        value = getattr(self.inner, name)
        if name not in PHASES:
            return value

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            result = value(*args, **kwargs)
            if type(result).__name__ == "ObjectRef":
                import ray

                ray.wait([result], fetch_local=False)
            self.seconds[PHASES[name]] += time.perf_counter() - started
            return result

        return timed


class PeakMemory:
    """Peak RSS of the coordinator's process and of the largest process of each role on the Ray cluster
    (`process_role`), sampled every `interval_s` while in use."""

    def __init__(self, coordinator_pid: int, interval_s: float = 0.25):
        self.coordinator_pid = coordinator_pid
        self.interval_s = interval_s
        self.peaks: dict[str, int] = defaultdict(int)
        self._stop = threading.Event()

    @contextmanager
    def sampling(self) -> Iterator[PeakMemory]:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            for process in psutil.process_iter(["pid", "cmdline", "memory_info"]):
                role = self._role(process.info)
                if role is not None and process.info["memory_info"] is not None:
                    self.peaks[role] = max(self.peaks[role], process.info["memory_info"].rss)
            self._stop.wait(self.interval_s)

    def _role(self, info: dict[str, Any]) -> str | None:
        if info["pid"] == self.coordinator_pid:
            return "coordinator"
        return process_role(" ".join(info["cmdline"] or []))


def olid_of_size(data_dir: str | None, size: int) -> DataSplits:
    """OLID with a training set of exactly `size` rows: its training split, repeated under new ids as often
    as needed, then cut."""
    splits = load_splits("olid", data_dir=data_dir, val_size=VALIDATION_SIZE, seed=0)
    train = splits.train
    repeats = math.ceil(size / len(train))
    grown = TextDataset(
        ids=[f"{i}~{r}" if r else i for r in range(repeats) for i in train.ids][:size],
        texts=(train.texts * repeats)[:size],
        labels=(train.labels * repeats)[:size],
        label_names=train.label_names,
    )
    return DataSplits(splits.name, grown, splits.validation, None, splits.format)


def one_round(splits: DataSplits, config: GbairConfig, backend: RoundBackend) -> dict[str, Any]:
    timed = TimedBackend(backend)
    started = time.perf_counter()
    recovery = Recovery(splits, config, backend=timed)
    state = recovery.start()
    trained = recovery.train_round(state)
    finished = recovery.finish_round(state, trained)
    seconds = {"round": time.perf_counter() - started, **timed.seconds}
    report = finished.rounds[0]
    return {"seconds": {k: round(v, 2) for k, v in seconds.items()}, "val_accuracy": report.val_accuracy,
            "flagged": len(report.flagged_ids), "misclassified_val": report.misclassified_val}


def measure(args: argparse.Namespace, size: int, backend_name: str, console: Console) -> dict[str, Any]:
    """One round in a fresh process, so that its memory is the coordinator's alone: one that ran a round
    in process before keeps the pages it freed."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pid = pool.submit(os.getpid).result()
        memory = PeakMemory(pid)
        with memory.sampling():
            result = pool.submit(_round_in_child, args.data_dir, size, backend_name, args.epochs, args.threads).result()
    result.update(size=size, backend=backend_name,
                  peak_rss_gib={role: round(rss / GIB, 3) for role, rss in sorted(memory.peaks.items())})
    console.print(f"{backend_name} {size}: {result['seconds']}")
    return result


def _round_in_child(data_dir: str | None, size: int, backend_name: str, epochs: int, threads: int) -> dict[str, Any]:
    torch.set_num_threads(threads)
    splits = olid_of_size(data_dir, size)
    config = GbairConfig(train={"epochs": epochs}, recovery={"rounds": 1, "action": "relabel"})
    if backend_name == "local":
        return one_round(splits, config, LocalBackend(config, splits.label_names))
    from gbair.distributed.backend import ray_backend
    from gbair.distributed.config import RayConfig

    with ray_backend(config, RayConfig(), splits.label_names) as backend:
        return one_round(splits, config, backend)


def growth(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per backend and phase, the exponent b of time ~ N^b between the smallest and largest size."""
    exponents: dict[str, dict[str, float]] = {}
    for backend in {r["backend"] for r in rows}:
        runs = sorted((r for r in rows if r["backend"] == backend), key=lambda r: r["size"])
        if len(runs) < 2:
            continue
        small, large = runs[0], runs[-1]
        ratio = math.log(large["size"] / small["size"])
        exponents[backend] = {phase: round(math.log(large["seconds"][phase] / small["seconds"][phase]) / ratio, 2)
                              for phase in small["seconds"] if small["seconds"][phase] > 0 and phase in large["seconds"]}
    return exponents


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 13240, 40000])
    parser.add_argument("--quick", action="store_true", help="the 2,000-example round only")
    parser.add_argument("--backends", nargs="+", choices=["local", "ray"], default=["local", "ray"])
    parser.add_argument("--epochs", type=int, default=1, help="a round's training epochs (timing, not quality)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads of the coordinator's process")
    parser.add_argument("--scoring-size", type=int, default=SCORING_SIZE, help="training examples of the replica throughput test")
    parser.add_argument("--data-dir", default=os.environ.get("GBAIR_DATA_DIR"))
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/scale.json"))
    args = parser.parse_args(argv)
    sizes = [2000] if args.quick else args.sizes
    console = Console()
    command = " ".join(["python -m benchmarks.scale", *(argv if argv is not None else sys.argv[1:])])
    result: dict[str, Any] = {"command": command, "machine": machine(),
                              "epochs": args.epochs, "rows": []}
    for size in sizes:
        for backend in args.backends:
            result["rows"].append(measure(args, size, backend, console))
            write_json(result, args.json)
    by_key = {(r["size"], r["backend"]): r for r in result["rows"]}
    smallest, largest = min(sizes), max(sizes)
    if {"local", "ray"} <= set(args.backends):
        result["ray_over_local"] = round(
            by_key[smallest, "ray"]["seconds"]["round"] / by_key[smallest, "local"]["seconds"]["round"], 3)
    if "ray" in args.backends:
        result["coordinator_peak_rss_gib"] = by_key[largest, "ray"]["peak_rss_gib"]["coordinator"]
    scoring = measure_scoring(args.scoring_size, 32, [1, 2])
    speed_ups = {row["replicas"]: row["speed_up_vs_core"] for row in scoring["rows"]}
    result.update(one_replica_vs_core=round(speed_ups[1], 3), two_replicas_vs_core=round(speed_ups[2], 3),
                  scoring=scoring, growth_exponent=growth(result["rows"]))
    write_json(result, args.json)
    print_table(result, console)
    return 0


def print_table(result: dict[str, Any], console: Console) -> None:
    phases = ["round", *PHASES.values()]
    table = Table(title=f"one G-BAIR round ({result['epochs']} epoch), MiniLM, OLID rows")
    for column in ("N", "backend", *(f"{p} s" for p in phases), "peak RSS GiB by process"):
        table.add_column(column)
    for row in result["rows"]:
        table.add_row(str(row["size"]), row["backend"], *(f"{row['seconds'].get(p, 0):.1f}" for p in phases),
                      ", ".join(f"{role} {rss}" for role, rss in row["peak_rss_gib"].items()))
    console.print(table)
    console.print({k: result[k] for k in ("ray_over_local", "coordinator_peak_rss_gib", "one_replica_vs_core",
                                         "two_replicas_vs_core", "growth_exponent") if k in result})


if __name__ == "__main__":
    raise SystemExit(run_main(main))
