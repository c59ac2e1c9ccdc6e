"""Terminal output: progress (bars, or lines in a log) for core work and the per-round table."""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from gbair.core.report import RecoveryReport, RoundReport

PHASE_LABELS = {"train": "training", "evaluate": "evaluating", "influence": "scoring influence"}


class ProgressBars:
    """A `gbair.core.progress.Progress` that draws one rich bar per phase, restarting it when it starts over."""

    def __init__(self, console: Console):
        self._bars = Progress(
            TextColumn("{task.description:>18}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console, transient=True,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> ProgressBars:
        self._bars.start()
        return self

    def __exit__(self, *exc) -> None:
        self._bars.stop()

    def __call__(self, phase: str, done: int, total: int) -> None:
        task = self._tasks.get(phase)
        if task is None:
            task = self._tasks[phase] = self._bars.add_task(PHASE_LABELS.get(phase, phase), total=total)
        elif done <= self._bars.tasks[task].completed:
            self._bars.reset(task, total=total)
        self._bars.update(task, completed=done, total=total)


class ProgressLines:
    """A `gbair.core.progress.Progress` for output that is not a terminal (a log file, CI): a bar would not
    show there, so each phase prints a timestamped line as it starts, at each quarter and as it ends."""

    STEPS = 4

    def __init__(self, console: Console):
        self._console = console
        self._shown: dict[str, int] = {}

    def __enter__(self) -> ProgressLines:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def __call__(self, phase: str, done: int, total: int) -> None:
        step = self.STEPS * done // total if total else self.STEPS
        if step == self._shown.get(phase):
            return
        self._shown[phase] = step
        self._console.print(f"{time.strftime('%H:%M:%S')} {PHASE_LABELS.get(phase, phase)} {done}/{total}",
                            highlight=False)


def progress_display(console: Console) -> ProgressBars | ProgressLines:
    """Bars on a terminal, lines anywhere else."""
    return ProgressBars(console) if console.is_terminal else ProgressLines(console)


def validation_accuracy(mean: float, accuracies: Sequence[float] | None, model_training: int = 0) -> str:
    """A round's validation accuracy; with several trainings, their mean and range, and which one is the
    round's model (counted from 1)."""
    if not accuracies or len(accuracies) < 2:
        return f"{mean:.4f}"
    return (f"{mean:.4f} (mean of {len(accuracies)}: {min(accuracies):.4f}-{max(accuracies):.4f}; "
            f"model: training {model_training + 1})")


def against_round_zero(p_value: float | None) -> str:
    """The paired test's part of a round's progress line."""
    return "" if p_value is None else f" (p = {p_value:.2g} against round 0)"


def class_marks(class_short_of_labels: str | None) -> str:
    """The progress line's note that the default read TracIn's opposition, and why."""
    if class_short_of_labels is None:
        return ""
    return f", labels look taken out of '{class_short_of_labels}': ranked by TracIn's opposition with the loss"


def round_table(report: RecoveryReport) -> Table:
    table = Table(
        title=f"G-BAIR on {report.dataset}: {report.method}, {report.action}",
        caption="val acc: the mean over the round's trainings (each one's is in the round lines and report.json). "
        "test acc: the round's model's, the training most accurate on the trusted set. "
        "val p: McNemar's test of the round's trusted-set errors against round 0's; above about 0.05 "
        "the trusted set cannot tell the two apart.",
    )
    for column in ("round", "train", "val acc", "val p", "test acc", "val err", "flagged", "train s", "infl. s"):
        table.add_column(column, justify="right")
    if report.corrupted_ids:
        table.add_column("truly flipped", justify="right")
    for row in report.rounds:
        table.add_row(*_cells(row, report), style="bold green" if row.round == report.best_round else None)
    return table


def _cells(row: RoundReport, report: RecoveryReport) -> list[str]:
    cells = [
        str(row.round),
        str(row.train_size),
        f"{row.val_accuracy:.4f}",
        "-" if row.val_change_p_value is None else f"{row.val_change_p_value:.2g}",
        "-" if row.test_accuracy is None else f"{row.test_accuracy:.4f}",
        str(row.misclassified_val),
        str(len(row.flagged_ids)),
        f"{row.timings.train_s:.1f}",
        f"{row.timings.influence_s:.1f}",
    ]
    if report.corrupted_ids:
        share = f" ({row.flagged_corrupted / len(row.flagged_ids):.0%})" if row.flagged_ids else ""
        cells.append(f"{row.flagged_corrupted}{share}")
    return cells
