"""The work of `gbair recover` once its input is known to be good: train, score, clean and retrain on this
process or on Ray, then write the report, the suspects, the adapter, the cleaned set and the plot."""

from __future__ import annotations

import argparse
import contextlib

import torch
from rich.console import Console

from gbair.cli.display import against_round_zero, class_marks, progress_display, round_table, validation_accuracy
from gbair.cli.errors import CommandError, as_command_error
from gbair.cli.plots import plot_rounds
from gbair.cli.quiet_libraries import quiet_engine_libraries
from gbair.core.artifacts import write_artifacts
from gbair.core.config import GbairConfig
from gbair.core.data import DataSplits
from gbair.core.recovery import Recovery
from gbair.core.training import resolve_device
from gbair.distributed.config import RayConfig


def run_recovery(
    args: argparse.Namespace,
    config: GbairConfig,
    splits: DataSplits,
    corrupted_ids: list[str],
    true_labels: dict[str, str],
    console: Console,
) -> int:
    quiet_engine_libraries()
    _check_device(args.device)
    with contextlib.ExitStack() as stack:
        backend = None
        if args.ray is not None:
            # Imported here so that runs without --ray do not pay for importing Ray.
            from gbair.distributed.backend import ray_backend
            from gbair.distributed.cluster import ClusterAccessError

            # ValueError: bad settings, or a scoring method Ray cannot run
            with as_command_error(ClusterAccessError, ValueError):
                backend = stack.enter_context(ray_backend(config, _ray_config(args), splits.label_names))
        with as_command_error(ValueError):  # a model that does not fit the task, or a file for a folder
            recovery = Recovery(splits, config, backend=backend)
        console.print(f"model: {config.model.name_or_path} ({recovery.backend.kind}), "
                      f"{recovery.backend.num_trainable:,} trainable PET parameters")
        with progress_display(console) as progress:
            outcome = recovery.run(
                corrupted_ids,
                progress=progress,
                on_round=lambda row: console.print(
                    f"round {row.round}: val {validation_accuracy(row.val_accuracy, row.val_accuracies, row.model_training)}"
                    f"{against_round_zero(row.val_change_p_value)}, "
                    f"flagged {len(row.flagged_ids)}{class_marks(row.class_short_of_labels)}"
                ),
                true_labels=true_labels,
            )
        artifacts = write_artifacts(outcome, recovery.backend, splits, args.out)  # on Ray, before it shuts down
    plot = plot_rounds(outcome.report, args.out / "accuracy.png")
    console.print(round_table(outcome.report))
    console.print(f"report: {artifacts.report}\nsuspects to review: {artifacts.suspects}\n"
                  f"adapter: {artifacts.adapter}\ncleaned training set: {artifacts.cleaned_train}\nplot: {plot}")
    return 0


def _check_device(name: str) -> None:
    """Fail before any work on a device this machine does not have; torch would fail in the first batch."""
    try:
        torch.empty(0, device=resolve_device(name))
    except (RuntimeError, AssertionError) as error:
        raise CommandError(f"--device {name}: {error}") from error


def _ray_config(args: argparse.Namespace) -> RayConfig:
    gpus = 1.0 if args.ray_gpu else 0.0
    return RayConfig(
        address=args.ray or None,
        num_workers=args.ray_workers,
        use_gpu=args.ray_gpu,
        storage_path=args.ray_storage or str((args.out / "checkpoints").resolve()),
        serving={"gpus_per_replica": gpus},
    )


