"""What the benchmark scripts share: ranking metrics, mean ± std, the machine description, what each process
of a local Ray cluster is, and writing JSON, markdown tables and PNG plots."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from gbair.core.data import DataError

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
from matplotlib.ticker import MaxNLocator  # noqa: E402

def run_main(main: Callable[[], int | None]) -> int:
    """A benchmark's exit code. A named set that is missing (its message says which `gbair data fetch`
    to run) or bad ends the run with that one line instead of a traceback."""
    try:
        return main() or 0
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


CURVE_POINTS = 101
"""Fractions of the training set inspected at which the flips-found curve is sampled: 0, 0.01, ..., 1."""


def ranking_metrics(scores: np.ndarray, is_flipped: np.ndarray, flag_count: int) -> dict[str, Any]:
    """AUROC of the score for "this label was flipped", the flipped share among the `flag_count` highest
    (precision@k), the share of all flips among them (recall), and the flips-found curve."""
    order = np.argsort(-scores, kind="stable")
    flagged = is_flipped[order[:flag_count]]
    found = np.concatenate([[0], np.cumsum(is_flipped[order])]) / max(1, is_flipped.sum())
    inspected = np.linspace(0, 1, CURVE_POINTS)
    return {
        "auroc": float(roc_auc_score(is_flipped, scores)),
        "precision_at_k": float(flagged.mean()),
        "recall_at_k": float(flagged.sum() / max(1, is_flipped.sum())),
        "k": int(flag_count),
        "flips_found_curve": found[np.round(inspected * len(scores)).astype(int)].round(4).tolist(),
    }


def mean_std(values: Sequence[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=float)
    return {"mean": float(array.mean()), "std": float(array.std(ddof=1)) if len(array) > 1 else 0.0, "n": len(array)}


def format_mean_std(summary: Mapping[str, float], digits: int = 3) -> str:
    if summary["n"] > 1:
        return f"{summary['mean']:.{digits}f} ± {summary['std']:.{digits}f}"
    return f"{summary['mean']:.{digits}f}"


def machine() -> dict[str, Any]:
    """Where and under what load a run happened; timings mean little without it."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        # The kernels torch picked; two CPUs of one name can differ here, and so can results (docs/benchmarks.md).
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "load_average": list(os.getloadavg()),
        "time": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


RAY_WORKER_ROLES = {
    "_JobModel": "job model actor",
    "_train_in_task": "training task",
    "IDLE": "idle Ray worker (keeps the last training task's model)",
    "_TrainingWorker": "Ray Train worker",
    "ServeReplica": "Serve replica",
    "SERVE_REPLICA": "Serve replica",
    "ServeController": "Serve controller",
}
"""Ray worker process titles (`ray::` up to the first '.' or ':') -> the role reported."""


def process_role(command: str) -> str | None:
    """What a process is to a benchmark on a local Ray cluster, from its command line: a Ray worker by its
    title, "Ray's own processes" for the programs of Ray's package (raylet, GCS, dashboard, agents), None for
    anything else. Ray's package, not "ray" anywhere: KubeRay's images run everything under /home/ray."""
    if command.startswith("ray::"):
        kind = command.removeprefix("ray::").split()[0].replace(".", ":").split(":")[0]
        return RAY_WORKER_ROLES.get(kind, "other Ray workers")
    return "Ray's own processes" if "-packages/ray/" in command else None


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_json(data: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def line_plot(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    path: Path,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    diagonal: bool = False,
    log: bool = False,
    integer_x: bool = False,
) -> Path:
    """One line per named (x, y) series; `diagonal` draws y = x (what random inspection finds)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figure, axis = plt.subplots(figsize=(6.4, 4.4))
    for index, (name, (x, y)) in enumerate(series.items()):
        # Up to 20 distinct colours, dashes on every other line, so a dozen methods stay tellable apart.
        axis.plot(x, y, label=name, marker="o" if len(x) <= 12 else None, color=plt.cm.tab20(index % 20),
                  linestyle="--" if index % 2 else "-")
    if diagonal:
        axis.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    if log:
        axis.set_xscale("log")
        axis.set_yscale("log")
    if integer_x:
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_title(title)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.legend(fontsize="small", ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
