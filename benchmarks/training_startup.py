"""What a round's training costs beyond the training itself on Ray: one Ray Train run with one worker
against gbair's one-worker training task (twice, the second reusing the task's process and model), both
against the same training in this process; then, on a new cluster, the task's first call after
`prepare_training` has warmed its process, as a RayBackend's start does. Prints a table and writes JSON.

    GBAIR_DATA_DIR=DIR .venv/bin/python -m benchmarks.training_startup --json benchmarks/results/training_startup.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray
import torch
from rich.console import Console
from rich.table import Table

from benchmarks.common import machine, run_main, write_json
from gbair.core.backend import LocalBackend
from gbair.core.config import GbairConfig
from gbair.core.data import load_splits
from gbair.distributed.cluster import connect
from gbair.distributed.config import RayConfig
from gbair.distributed.trainer import prepare_training, train_on_ray, train_with_ray_train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--data-dir", default=os.environ.get("GBAIR_DATA_DIR"))
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/training_startup.json"))
    args = parser.parse_args(argv)
    console = Console()
    torch.set_num_threads(1)  # as a training worker or task has: one CPU
    splits = load_splits("sst2", data_dir=args.data_dir, train_size=args.train_size, val_size=50, seed=0)
    config = GbairConfig(train={"epochs": args.epochs})
    local = LocalBackend(config, splits.label_names)
    train = local.encode(splits.train)
    started = time.perf_counter()
    local.train(local.initial_state, train, lambda *progress: None)
    in_process = time.perf_counter() - started
    rows: list[dict[str, Any]] = [{"setup": "in this process", "seconds": in_process, "beyond_training_s": 0.0}]

    ray_config = RayConfig(cpus_per_worker=1)  # one torch thread, as here

    def timed(setup: str, call: Callable[[], Any], trains: bool = True) -> None:
        started = time.perf_counter()
        call()
        seconds = time.perf_counter() - started
        rows.append({"setup": setup, "seconds": seconds, "beyond_training_s": seconds - (in_process if trains else 0.0)})

    def train_in_task() -> None:
        train_on_ray(config, ray_config, splits.label_names, local.initial_state, train)

    # Each part on a new local cluster, so that every first call meets a cluster with no process warmed.
    connect(ray_config)
    try:
        timed("Ray Train, 1 worker",
              lambda: train_with_ray_train(config, ray_config, splits.label_names, local.initial_state, train))
        timed("gbair's training task, first call", train_in_task)
        timed("gbair's training task, second call", train_in_task)
    finally:
        ray.shutdown()
    connect(ray_config)
    try:
        timed("prepare_training alone (a job's start runs it beside Serve's)",
              lambda: ray.get(prepare_training(config, ray_config, splits.label_names)), trains=False)
        timed("gbair's training task, first call after prepare_training", train_in_task)
    finally:
        ray.shutdown()
    for row in rows:
        row["seconds"] = round(row["seconds"], 1)
        row["beyond_training_s"] = round(row["beyond_training_s"], 1)
    command = " ".join(["python -m benchmarks.training_startup", *(argv if argv is not None else sys.argv[1:])])
    write_json({"command": command, "machine": machine(), "train_size": len(train), "epochs": args.epochs,
                "rows": rows}, args.json)
    table = Table(title=f"one round's training: {len(train)} SST-2 examples, {args.epochs} epoch, MiniLM, 1 thread")
    for column in ("setup", "seconds", "beyond training s"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["setup"], f"{row['seconds']:.1f}", f"{row['beyond_training_s']:.1f}")
    console.print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
