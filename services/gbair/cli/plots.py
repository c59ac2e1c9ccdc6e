"""Accuracy per round as a PNG, for people who would rather look than read."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from gbair.core.report import RecoveryReport  # noqa: E402


def plot_rounds(report: RecoveryReport, path: Path) -> Path:
    rounds = [r.round for r in report.rounds]
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot(rounds, [r.val_accuracy for r in report.rounds], marker="o", label="validation")
    if all(r.test_accuracy is not None for r in report.rounds):
        axis.plot(rounds, [r.test_accuracy for r in report.rounds], marker="s", label="test")
    axis.axvline(report.best_round, color="grey", linestyle=":", label=f"best round ({report.best_round})")
    axis.set_xlabel("round")
    axis.set_ylabel("accuracy")
    axis.set_xticks(rounds)
    axis.set_title(f"G-BAIR on {report.dataset} ({report.method}, {report.action})")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
