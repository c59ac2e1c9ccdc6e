"""`gbair recover`: one G-BAIR recovery in this process, from a data set to a report and a cleaned set."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from pathlib import Path
from typing import get_args

from pydantic import ValidationError
from rich.console import Console

from gbair.cli.display import ProgressBars, round_table
from gbair.cli.plots import plot_rounds
from gbair.core.artifacts import write_artifacts
from gbair.core.config import CleaningAction, GbairConfig, ScoringMethod
from gbair.core.data import NAMED_SETS, ColumnNames, DataError, corrupt_labels, load_splits, true_label_names
from gbair.core.recovery import Recovery
from gbair.distributed.config import RayConfig

DEFAULTS = GbairConfig()
# The benchmark protocol's CPU defaults (MISSION.md section 3).
NAMED_SET_SIZES = (2000, 400)


def add_parser(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "recover",
        help="Train, find mislabeled examples with influence, clean, retrain; write report.json.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    data = parser.add_argument_group("data")
    data.add_argument("--data", default="sst2", help=f"{', '.join(NAMED_SETS)}, or a .csv/.jsonl training file")
    data.add_argument("--data-dir", type=Path, default=None, help="where named sets live (env GBAIR_DATA_DIR)")
    data.add_argument("--val-data", type=Path, default=None, help="validation file for a user training file")
    data.add_argument("--test-data", type=Path, default=None, help="test file for a user training file")
    data.add_argument("--text-column", default="text")
    data.add_argument("--text-pair-column", default=None)
    data.add_argument("--label-column", default="label")
    data.add_argument("--id-column", default=None)
    data.add_argument("--train-size", type=int, default=None,
                      help=f"training examples sampled (default: {NAMED_SET_SIZES[0]} of a named set, all of a file)")
    data.add_argument("--val-size", type=int, default=None,
                      help=f"trusted validation examples sampled (default: {NAMED_SET_SIZES[1]} of a named set; "
                           "all of --val-data, else 10%% of the training file)")
    data.add_argument("--corrupt", type=float, default=0.0, help="flip this fraction of training labels (experiments)")

    method = parser.add_argument_group("G-BAIR")
    method.add_argument("--rounds", type=int, default=DEFAULTS.recovery.rounds)
    method.add_argument("--budget", type=float, default=DEFAULTS.recovery.budget,
                        help="flagged per round: a fraction (<1) or a count")
    method.add_argument("--method", choices=get_args(ScoringMethod), default=DEFAULTS.influence.method)
    method.add_argument("--action", choices=get_args(CleaningAction), default=DEFAULTS.recovery.action)
    method.add_argument("--patience", type=int, default=DEFAULTS.recovery.patience)
    method.add_argument("--folds", type=int, default=DEFAULTS.influence.confident_learning_folds,
                        help="K of the K-fold training behind --method confident-learning")

    model = parser.add_argument_group("model and training")
    model.add_argument("--model", default=DEFAULTS.model.name_or_path,
                       help="all-minilm-l6-v2, smollm2-135m, a model folder, a .gguf file or a hub id")
    model.add_argument("--virtual-tokens", type=int, default=DEFAULTS.model.num_virtual_tokens)
    model.add_argument("--max-length", type=int, default=DEFAULTS.model.max_length)
    model.add_argument("--label-words", nargs="+", default=None, help="verbalizer words for a causal LM")
    model.add_argument("--epochs", type=int, default=DEFAULTS.train.epochs)
    model.add_argument("--batch-size", type=int, default=DEFAULTS.train.batch_size)
    model.add_argument("--lr", type=float, default=DEFAULTS.train.learning_rate)
    model.add_argument("--checkpoints-per-epoch", type=int, default=DEFAULTS.train.checkpoints_per_epoch)
    model.add_argument("--device", default=DEFAULTS.train.device)

    cluster = parser.add_argument_group("Ray")
    cluster.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                         help="train on Ray Train and score on Ray Serve: on the cluster at ADDRESS, or a local one "
                              "started for this run when none is given")
    cluster.add_argument("--ray-workers", type=int, default=RayConfig.model_fields["num_workers"].default,
                         help="Ray Train workers")
    cluster.add_argument("--ray-gpu", action="store_true", help="one GPU per training worker and per replica")
    cluster.add_argument("--ray-storage", default=None,
                         help="checkpoint storage every node can read, a folder or a URI; none: OUT/checkpoints")

    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.set_defaults(handler=run)


def build_config(args: argparse.Namespace) -> GbairConfig:
    return GbairConfig(
        model={
            "name_or_path": args.model, "num_virtual_tokens": args.virtual_tokens,
            "max_length": args.max_length, "label_words": args.label_words,
        },
        train={
            "epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.lr,
            "checkpoints_per_epoch": args.checkpoints_per_epoch, "seed": args.seed, "device": args.device,
        },
        influence={"method": args.method, "seed": args.seed, "confident_learning_folds": args.folds},
        recovery={"rounds": args.rounds, "budget": args.budget, "action": args.action, "patience": args.patience},
    )


def run(args: argparse.Namespace, console: Console) -> int:
    try:
        config = build_config(args)
        splits = load_splits(
            args.data,
            data_dir=args.data_dir,
            train_size=_size(args.train_size, NAMED_SET_SIZES[0], args.data),
            val_size=_size(args.val_size, NAMED_SET_SIZES[1], args.data),
            seed=args.seed,
            validation_path=args.val_data,
            test_path=args.test_data,
            columns=_columns(args),
        )
    except (ValidationError, DataError, ValueError, FileNotFoundError) as error:
        console.print(f"[red]error:[/red] {error}")
        return 2
    corrupted_ids: list[str] = []
    true_labels: dict[str, str] = {}
    if args.corrupt:
        train, corrupted_ids = corrupt_labels(splits.train, args.corrupt, seed=args.seed)
        true_labels = true_label_names(splits.train, corrupted_ids)
        splits = dataclasses.replace(splits, train=train)
    console.print(
        f"{splits.name}: {len(splits.train)} train ({len(corrupted_ids)} labels flipped), "
        f"{len(splits.validation)} validation, {len(splits.test) if splits.test else 0} test"
    )
    with contextlib.ExitStack() as stack:
        backend = None
        if args.ray is not None:
            # Imported here so that runs without --ray do not pay for importing Ray.
            from gbair.distributed.backend import ray_backend
            from gbair.distributed.cluster import ClusterAccessError

            try:
                backend = stack.enter_context(ray_backend(config, _ray_config(args)))
            except (ValueError, ClusterAccessError) as error:  # ValueError: bad settings, or a method Ray cannot run
                console.print(f"[red]error:[/red] {error}")
                return 2
        recovery = Recovery(splits, config, backend=backend)
        console.print(f"model: {config.model.name_or_path} ({recovery.classifier.kind}), "
                      f"{recovery.classifier.num_trainable:,} trainable PET parameters")
        with ProgressBars(console) as progress:
            outcome = recovery.run(
                corrupted_ids,
                progress=progress,
                on_round=lambda row: console.print(
                    f"round {row.round}: val {row.val_accuracy:.4f}, flagged {len(row.flagged_ids)}"
                ),
                true_labels=true_labels,
            )
    artifacts = write_artifacts(outcome, recovery.classifier, splits, args.out)
    plot = plot_rounds(outcome.report, args.out / "accuracy.png")
    console.print(round_table(outcome.report))
    console.print(f"report: {artifacts.report}\nsuspects to review: {artifacts.suspects}\n"
                  f"adapter: {artifacts.adapter}\ncleaned training set: {artifacts.cleaned_train}\nplot: {plot}")
    return 0


def _ray_config(args: argparse.Namespace) -> RayConfig:
    gpus = 1.0 if args.ray_gpu else 0.0
    return RayConfig(
        address=args.ray or None,
        num_workers=args.ray_workers,
        use_gpu=args.ray_gpu,
        storage_path=args.ray_storage or str((args.out / "checkpoints").resolve()),
        serving={"gpus_per_replica": gpus},
    )


def _size(requested: int | None, named_set_default: int, data: str) -> int | None:
    if requested is not None:
        return requested
    return named_set_default if data in NAMED_SETS else None


def _columns(args: argparse.Namespace) -> ColumnNames | None:
    if args.data in NAMED_SETS:
        return None
    return ColumnNames(text=args.text_column, text_pair=args.text_pair_column, label=args.label_column, id=args.id_column)
