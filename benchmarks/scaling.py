"""Influence throughput on Ray Serve with 1 and 2 replicas against the single-process core.

Trains the real MiniLM prompt classifier briefly on an SST-2 sample, then scores the training set
against validation gradients: in this process with core's training_statistics (one torch thread), and
through the Serve deployment with each replica count (one thread per replica). A first call per replica
count loads the model and checkpoints into the replicas (cold); the warm calls after it measure
steady-state throughput. Each time is a median of --repeats calls. The CPU time every process used during
the warm calls is reported per call by role (the driver, each role on the Ray cluster, the rest): on a
machine the replicas fill, what the others use is taken from them. Prints a table and writes JSON.

    .venv/bin/python -m benchmarks.scaling --out benchmarks/results/scaling.json

The shards and batches are the service's defaults: with 1,024 examples, four shards of four batches.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from statistics import median

import psutil
import torch
from rich.console import Console
from rich.table import Table

from benchmarks.common import RAY_WORKER_ROLES, machine, process_role
from gbair.core.config import GbairConfig, InfluenceConfig
from gbair.core.data import load_splits
from gbair.core.influence import query_gradients, training_statistics
from gbair.core.model import PetClassifier, encode
from gbair.core.training import train_classifier
from gbair.serving.config import ServingConfig

REPLICAS = RAY_WORKER_ROLES["ServeReplica"]
SCORING_SIZE = 1024
"""Training examples scored: four of the service's default shards, so each of two replicas takes two."""


def cpu_seconds_by_process() -> dict[int, tuple[str, float]]:
    """Every process's command line and the CPU seconds it has used so far."""
    seconds = {}
    for process in psutil.process_iter(["pid", "cmdline", "cpu_times"]):
        times = process.info["cpu_times"]
        if times is not None:
            seconds[process.info["pid"]] = (" ".join(process.info["cmdline"] or []), times.user + times.system)
    return seconds


def cpu_seconds_by_role(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds used between two snapshots, by this driver, each role on the Ray cluster (`process_role`)
    and everything else: on a machine the replicas fill, the rest is what they lose."""
    used: dict[str, float] = {}
    for pid, (command, seconds) in after.items():
        role = "driver" if pid == os.getpid() else process_role(command) or "rest of the machine"
        used[role] = used.get(role, 0.0) + seconds - before.get(pid, (command, 0.0))[1]
    return {role: round(seconds, 2) for role, seconds in used.items()}


def measure_scoring(
    train_size: int, query_count: int, replica_counts: list[int], shard_size: int = ServingConfig().shard_size,
    batch_size: int = InfluenceConfig().batch_size, repeats: int = 3,
    controller_loop_interval_s: float = ServingConfig().controller_loop_interval_s,
) -> dict:
    """Scoring throughput in this process (one torch thread) and on each number of replicas (one thread
    each), as medians of `repeats` warm calls; starts a local Ray cluster and shuts it down.

    The same call's time drifts by 10-20% over minutes on a shared virtual machine, so the core is timed
    again before each replica count, and every ratio is over the median of all the core's timings."""
    torch.set_num_threads(1)

    config = GbairConfig(train={"epochs": 1, "checkpoints_per_epoch": 2}, influence={"batch_size": batch_size})
    splits = load_splits("sst2", train_size=train_size, val_size=query_count, seed=0)
    classifier = PetClassifier.build(config.model, splits.label_names, seed=0)
    train = encode(classifier, splits.train)
    checkpoints = train_classifier(classifier, train, config.train).checkpoints
    queries = query_gradients(classifier, checkpoints, encode(classifier, splits.validation), batch_size)
    work = len(train) * len(checkpoints)
    load_before = os.getloadavg()

    core_timings = []

    def time_core():
        for _ in range(repeats):
            started = time.perf_counter()
            statistics = training_statistics(classifier, checkpoints, train, queries, batch_size)
            core_timings.append(time.perf_counter() - started)
        return statistics

    expected = time_core()
    rows = []

    import ray
    from ray import serve

    from gbair.distributed.cluster import connect
    from gbair.distributed.config import RayConfig
    from gbair.serving.checkpoints import store_checkpoints
    from gbair.serving.driver import ShardedScoring, deploy

    ray_config = RayConfig(  # checkpoints go to the temp folder
        serving={"max_replicas": max(replica_counts), "controller_loop_interval_s": controller_loop_interval_s}
    )
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
                time_core()
            scoring = ShardedScoring(deploy(serving), serving)
            timings = []
            for call in range(1 + repeats):  # cold (model and checkpoint loads), then warm
                if call == 1:
                    cpu_before = cpu_seconds_by_process()
                started = time.perf_counter()
                statistics = scoring.statistics(
                    config.model, splits.label_names, references, train, stored_queries, batch_size
                )
                timings.append(time.perf_counter() - started)
            cpu_seconds = cpu_seconds_by_role(cpu_before, cpu_seconds_by_process())
            torch.testing.assert_close(statistics.dots, expected.dots, rtol=1e-5, atol=1e-7)
            rows.append({"setup": f"Ray Serve, {replicas} replica(s)", "replicas": replicas,
                         "seconds": median(timings[1:]), "cold_seconds": timings[0],
                         "timings": timings[1:],
                         "cpu_seconds_per_warm_call": {role: round(seconds / repeats, 2) for role, seconds in cpu_seconds.items()}})
    finally:
        serve.shutdown()
        ray.shutdown()

    core_s = median(core_timings)
    rows.insert(0, {"setup": "core, 1 process", "replicas": 0, "seconds": core_s, "cold_seconds": None,
                    "timings": core_timings})
    for row in rows:
        row["examples_checkpoints_per_s"] = work / row["seconds"]
        row["speed_up_vs_core"] = core_s / row["seconds"]
        # Time beyond a perfect split of the core's work over the replicas: routing, transfer, gathering.
        row["overhead_s"] = row["seconds"] - core_s / row["replicas"] if row["replicas"] else 0.0
    return {
        "load_average_after": os.getloadavg(),
        "machine": machine(),
        "load_average_before": load_before,
        "train_size": len(train), "checkpoints": len(checkpoints), "queries": len(splits.validation),
        "pet_parameters": classifier.num_trainable, "shard_size": shard_size, "batch_size": batch_size,
        "controller_loop_interval_s": controller_loop_interval_s,
        "repeats": repeats,
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=SCORING_SIZE)
    parser.add_argument("--queries", type=int, default=32, help="validation examples used as queries")
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--shard-size", type=int, default=ServingConfig().shard_size)
    parser.add_argument("--batch-size", type=int, default=InfluenceConfig().batch_size)
    parser.add_argument("--repeats", type=int, default=3, help="warm calls per setup; the table shows medians")
    parser.add_argument("--controller-loop-interval", type=float, default=ServingConfig().controller_loop_interval_s,
                        help="seconds between the Serve controller's turns (Serve's own default: 0.1)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scaling.json"))
    args = parser.parse_args()
    console = Console()
    result = measure_scoring(args.train_size, args.queries, args.replicas, args.shard_size, args.batch_size,
                             args.repeats, args.controller_loop_interval)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))

    table = Table(title=f"influence scoring: {result['train_size']} examples x {result['checkpoints']} checkpoints, "
                        f"{result['queries']} queries, MiniLM")
    for column in ("setup", "warm s", "cold s", "ex*ckpt/s", "speed-up", "overhead s", "CPU s beside replicas"):
        table.add_column(column, justify="left" if column == "setup" else "right")
    for row in result["rows"]:
        table.add_row(row["setup"], f"{row['seconds']:.2f}",
                      "" if row["cold_seconds"] is None else f"{row['cold_seconds']:.2f}",
                      f"{row['examples_checkpoints_per_s']:.1f}", f"{row['speed_up_vs_core']:.2f}x",
                      f"{row['overhead_s']:.2f}", _beside_replicas(row))
    console.print(table)
    console.print(f"written to {args.out}")


def _beside_replicas(row: dict) -> str:
    """CPU seconds a warm call cost outside the replicas."""
    if "cpu_seconds_per_warm_call" not in row:
        return ""
    return f"{sum(s for role, s in row['cpu_seconds_per_warm_call'].items() if role != REPLICAS):.2f}"


if __name__ == "__main__":
    main()
