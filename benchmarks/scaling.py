"""Influence throughput on Ray Serve with 1 and 2 replicas against the single-process core.

Trains the real MiniLM prompt classifier briefly on an SST-2 sample, then scores the training set
against validation gradients: once in this process with core's training_statistics (one torch thread),
then through the Serve deployment with each replica count (one thread per replica). A warm-up call per
replica count loads the model and checkpoints into the replicas; the timed call after it measures
steady-state throughput. Prints a table and writes JSON.

    .venv/bin/python benchmarks/scaling.py --train-size 256 --out benchmarks/results/scaling.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from gbair.core.config import GbairConfig
from gbair.core.data import load_splits
from gbair.core.influence import query_gradients, training_statistics
from gbair.core.model import PetClassifier, encode
from gbair.core.training import train_classifier


def measure_scoring(
    train_size: int, query_count: int, replica_counts: list[int], shard_size: int, batch_size: int
) -> dict:
    """Scoring throughput in this process (one torch thread) and on each number of replicas (one thread
    each); starts a local Ray cluster and shuts it down."""
    torch.set_num_threads(1)

    config = GbairConfig(train={"epochs": 1, "checkpoints_per_epoch": 2}, influence={"batch_size": batch_size})
    splits = load_splits("sst2", train_size=train_size, val_size=query_count, seed=0)
    classifier = PetClassifier.build(config.model, splits.label_names, seed=0)
    train = encode(classifier, splits.train)
    checkpoints = train_classifier(classifier, train, config.train).checkpoints
    queries = query_gradients(classifier, checkpoints, encode(classifier, splits.validation), batch_size)
    work = len(train) * len(checkpoints)
    load_before = os.getloadavg()

    started = time.perf_counter()
    expected = training_statistics(classifier, checkpoints, train, queries, batch_size)
    core_s = time.perf_counter() - started
    rows = [{"setup": "core, 1 process", "replicas": 0, "seconds": core_s, "cold_seconds": None}]

    import ray
    from ray import serve

    from gbair.distributed.cluster import connect
    from gbair.distributed.config import RayConfig
    from gbair.serving.checkpoints import store_checkpoints
    from gbair.serving.driver import ShardedScoring, deploy

    ray_config = RayConfig(serving={"max_replicas": max(replica_counts)})  # checkpoints go to the temp folder
    connect(ray_config)
    try:
        references = store_checkpoints(checkpoints, ray_config.storage_path)
        stored_queries = ray.put(queries)
        for replicas in replica_counts:
            serving = ray_config.serving.model_copy(
                update={"min_replicas": replicas, "max_replicas": replicas, "shard_size": shard_size}
            )
            if replicas != replica_counts[0]:
                serve.delete(serving.app_name)  # deploy() reuses a running app; this count needs a new one
            scoring = ShardedScoring(deploy(serving), serving)
            timings = []
            for _ in range(2):  # cold (model and checkpoint loads), then warm
                started = time.perf_counter()
                statistics = scoring.statistics(
                    config.model, splits.label_names, references, train, stored_queries, batch_size
                )
                timings.append(time.perf_counter() - started)
            torch.testing.assert_close(statistics.dots, expected.dots, rtol=1e-5, atol=1e-7)
            rows.append({"setup": f"Ray Serve, {replicas} replica(s)", "replicas": replicas,
                         "seconds": timings[1], "cold_seconds": timings[0]})
    finally:
        serve.shutdown()
        ray.shutdown()

    for row in rows:
        row["examples_checkpoints_per_s"] = work / row["seconds"]
        row["speed_up_vs_core"] = core_s / row["seconds"]
        # Time beyond a perfect split of the core's work over the replicas: routing, transfer, gathering.
        row["overhead_s"] = row["seconds"] - core_s / row["replicas"] if row["replicas"] else 0.0
    return {
        "load_average_after": os.getloadavg(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, no GPU"
        if not torch.cuda.is_available() else torch.cuda.get_device_name(),
        "load_average_before": load_before,
        "train_size": len(train), "checkpoints": len(checkpoints), "queries": len(splits.validation),
        "pet_parameters": classifier.num_trainable, "shard_size": shard_size, "batch_size": batch_size,
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=256)
    parser.add_argument("--queries", type=int, default=32, help="validation examples used as queries")
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--shard-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scaling.json"))
    args = parser.parse_args()
    console = Console()
    result = measure_scoring(args.train_size, args.queries, args.replicas, args.shard_size, args.batch_size)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))

    table = Table(title=f"influence scoring: {result['train_size']} examples x {result['checkpoints']} checkpoints, "
                        f"{result['queries']} queries, MiniLM")
    for column in ("setup", "warm s", "cold s", "ex*ckpt/s", "speed-up", "overhead s"):
        table.add_column(column, justify="left" if column == "setup" else "right")
    for row in result["rows"]:
        table.add_row(row["setup"], f"{row['seconds']:.2f}",
                      "" if row["cold_seconds"] is None else f"{row['cold_seconds']:.2f}",
                      f"{row['examples_checkpoints_per_s']:.1f}", f"{row['speed_up_vs_core']:.2f}x",
                      f"{row['overhead_s']:.2f}")
    console.print(table)
    console.print(f"written to {args.out}")


if __name__ == "__main__":
    main()
