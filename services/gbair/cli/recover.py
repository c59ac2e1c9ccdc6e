"""`gbair recover`: one G-BAIR recovery in this process, from a data set to a report and a cleaned set."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import get_args

from rich.console import Console

from gbair.cli.errors import as_command_error
from gbair.cli.extras import require
from gbair.core.config import CleaningAction, GbairConfig, ScoringMethod
from gbair.core.data import NAMED_SETS, ColumnNames, corrupt_labels, load_splits, true_label_names
from gbair.distributed.config import RayConfig

DEFAULTS = GbairConfig()
# The benchmark protocol's sizes on CPU (docs/benchmarks.md): 2,000 training and 400 validation examples.
NAMED_SET_SIZES = (2000, 400)


def add_parser(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("recover", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
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
    method.add_argument("--round-trainings", type=int, default=DEFAULTS.recovery.round_trainings,
                        help="trainings of each round's data from other seeds, whose mean validation accuracy picks "
                             "the round (the first is scored; the one most accurate on validation is exported)")
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
                              "started for this run when none is given ('auto': the one RAY_ADDRESS names)")
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
        recovery={
            "rounds": args.rounds, "budget": args.budget, "action": args.action, "patience": args.patience,
            "round_trainings": args.round_trainings,
        },
    )


def run(args: argparse.Namespace, console: Console) -> int:
    if args.ray is not None:
        require("ray", "recover --ray")
    config = build_config(args)
    with as_command_error(ValueError):  # DataError among them
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
    # Made before any work, so that an output folder that cannot be written stops the run at once.
    args.out.mkdir(parents=True, exist_ok=True)
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
    # The engine is imported only now: bad input is reported without waiting seconds for torch.
    from gbair.cli.recovery_run import run_recovery

    return run_recovery(args, config, splits, corrupted_ids, true_labels, console)


def _size(requested: int | None, named_set_default: int, data: str) -> int | None:
    if requested is not None:
        return requested
    return named_set_default if data in NAMED_SETS else None


def _columns(args: argparse.Namespace) -> ColumnNames | None:
    if args.data in NAMED_SETS:
        return None
    return ColumnNames(text=args.text_column, text_pair=args.text_pair_column, label=args.label_column, id=args.id_column)
