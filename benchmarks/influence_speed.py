"""Influence speed: gbair's influence pass against Captum's TracInCP and the floor of one training epoch.

All three run in one process on the same PET classifier, data and checkpoints:
- gbair: `query_gradients` for the query set, then `training_statistics` (one batched backward per batch
  gives every example's gradient) over the training set, per checkpoint;
- Captum `TracInCP` restricted (`layers`) to the PET parameters, the soft prompt and the head, with the
  query gradients summed (`aggregate=True`), which is exactly what a G-BAIR round needs;
- one plain training epoch: one forward and backward per example, the floor any gradient method pays.
A small subset checks that gbair and Captum give the same train x query TracIn matrix.

    python -m benchmarks.influence_speed --quick --json /tmp/speed.json
    python -m benchmarks.influence_speed --json docs/results/influence-speed.json --out docs/results/influence-speed
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import nn
from torch.utils.data import DataLoader

try:
    # Imported up front: importing captum after the gradient passes have started threads hung here once.
    from captum.influence import TracInCP
except ImportError:  # the benchmark extra is not installed; --no-captum still works
    TracInCP = None

from benchmarks.common import line_plot, machine, markdown_table, run_main, write_json
from gbair.core.config import GbairConfig, TrainConfig
from gbair.core.data import NAMED_SETS, load_splits
from gbair.core.influence import query_gradients, training_statistics
from gbair.core.model import PetClassifier, encode
from gbair.core.model.inputs import EncodedSet
from gbair.core.training import Checkpoint, resolve_device, train_classifier

QUICK = {"sizes": [100, 200], "captum_sizes": [100], "checkpoints": 2, "checkpoint_counts": [1, 2],
         "queries": 20, "check_train": 8, "check_queries": 4, "captum_batch_sweep": [1, 16], "sweep_size": 16}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = GbairConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=NAMED_SETS, default="sst2")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--model", default=defaults.model.name_or_path)
    parser.add_argument("--sizes", nargs="+", type=int, default=[500, 1000, 2000, 4000], help="training-set sizes")
    parser.add_argument("--captum-sizes", nargs="+", type=int, default=[500],
                        help="sizes Captum also runs at (it is slow); the first is where the ratios are taken")
    parser.add_argument("--checkpoints", type=int, default=defaults.train.epochs,
                        help="checkpoints scored at every size (default: one per epoch of the default training)")
    parser.add_argument("--checkpoint-counts", nargs="+", type=int, default=[1, 2, 4],
                        help="checkpoint counts gbair runs at the first Captum size")
    parser.add_argument("--queries", type=int, default=100,
                        help="query (misclassified validation) examples; a G-BAIR round on 1,000 SST-2 examples has ~90")
    parser.add_argument("--check-train", type=int, default=32, help="training examples in the gbair = Captum check")
    parser.add_argument("--check-queries", type=int, default=8, help="query examples in the gbair = Captum check")
    parser.add_argument("--batch-size", type=int, default=defaults.influence.batch_size, help="influence batch size")
    parser.add_argument("--captum-batch-size", type=int, default=1,
                        help="Captum's own default: its per-example gradients take one backward pass per example "
                             "through the whole batch's graph, so a larger batch costs it more per example")
    parser.add_argument("--captum-batch-sweep", nargs="*", type=int, default=[1, 16, 64],
                        help="Captum batch sizes timed on --sweep-size examples at one checkpoint, beside gbair")
    parser.add_argument("--sweep-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="where every pass runs; 'auto' picks CUDA when present")
    parser.add_argument("--no-captum", action="store_true", help="time gbair and the epoch only")
    parser.add_argument("--quick", action="store_true", help=f"a minute or two: {QUICK}")
    parser.add_argument("--json", type=Path, default=None, help="write the headline numbers and every timing here")
    parser.add_argument("--out", type=Path, default=None, help="folder for influence-speed.md and plots")
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    if not set(args.captum_sizes) <= set(args.sizes):
        parser.error("--captum-sizes must be among --sizes")
    return args


class _Logits(nn.Module):
    """What Captum expects of a model: `model(*inputs)` returns the logits."""

    def __init__(self, classifier: PetClassifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.classifier(input_ids, attention_mask).logits


def _loader(examples: EncodedSet, batch_size: int, device: torch.device) -> tuple[DataLoader, list[int]]:
    """gbair's own length-sorted padded batches, on `device`, as a Captum DataLoader, and the example order they
    yield."""
    batches = list(examples.batches(batch_size))
    order = [int(p) for batch in batches for p in batch.positions]
    loader = DataLoader(batches, batch_size=None,
                        collate_fn=lambda b: (b.input_ids.to(device), b.attention_mask.to(device), b.labels.to(device)))
    return loader, order


def captum_tracin(
    classifier: PetClassifier,
    checkpoints: Sequence[Checkpoint],
    train: EncodedSet,
    queries: EncodedSet,
    batch_size: int,
    aggregate: bool,
) -> torch.Tensor:
    """Captum's TracInCP over the PET parameters: (M, N) train x query influence, or (N,) summed over queries."""
    if TracInCP is None:
        raise SystemExit("Captum is not installed: pip install -e '.[benchmark]', or pass --no-captum")
    states = {f"checkpoint-{c:03d}": checkpoint for c, checkpoint in enumerate(checkpoints)}

    def load(model: _Logits, name: str) -> float:
        model.classifier.load_pet_state(states[name].state)
        return states[name].learning_rate

    layers = ["classifier.peft_model.prompt_encoder.default.embedding"]
    if classifier.head is not None:
        layers.append("classifier.head")
    train_loader, order = _loader(train, batch_size, classifier.device)
    tracin = TracInCP(
        _Logits(classifier), train_loader, list(states), checkpoints_load_func=load,
        loss_fn=nn.CrossEntropyLoss(reduction="none"), batch_size=None, layers=layers,
    )
    query_loader, query_order = _loader(queries, batch_size, classifier.device)
    scores = tracin.influence(query_loader, aggregate=aggregate).cpu()  # (queries or 1, N) in loader order
    unsorted = torch.empty_like(scores)
    unsorted[:, order] = scores
    if aggregate:
        return unsorted[0]
    result = torch.empty_like(unsorted)
    result[query_order] = unsorted
    return result


def gbair_tracin(
    classifier: PetClassifier, checkpoints: Sequence[Checkpoint], train: EncodedSet, queries: EncodedSet, batch_size: int
) -> torch.Tensor:
    """gbair's (N, M) eta-weighted train x query TracIn matrix."""
    query = query_gradients(classifier, checkpoints, queries, batch_size)
    stats = training_statistics(classifier, checkpoints, train, query, batch_size)
    return stats.weighted(stats.dots)


def _timed(work: Callable[[], Any]) -> tuple[Any, float]:
    """Seconds until the work's GPU kernels, if any, have finished, not only until the call returns."""
    _finish_gpu_work()
    started = time.perf_counter()
    result = work()
    _finish_gpu_work()
    return result, time.perf_counter() - started


def _finish_gpu_work() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _relative_difference(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    """max |ours - theirs| over the largest |theirs|: relative to the scores' own scale, so entries near zero
    do not blow it up."""
    return float((ours.double() - theirs.double()).abs().max() / theirs.double().abs().max())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(stderr=True)
    config = GbairConfig(model={"name_or_path": args.model}, train={"seed": args.seed})
    splits = load_splits(args.data, data_dir=args.data_dir, train_size=max(args.sizes), val_size=args.queries, seed=args.seed)
    classifier = PetClassifier.build(config.model, splits.label_names, seed=args.seed).to(resolve_device(args.device))
    initial = classifier.pet_state()
    train_all, queries = encode(classifier, splits.train), encode(classifier, splits.validation)
    most = max(args.checkpoints, *args.checkpoint_counts)
    # Real, distinct checkpoints from a short training run; what they hold does not change the cost.
    warm_up = train_all.subset(range(min(len(train_all), 8 * config.train.batch_size)))
    warm_up_batch = min(config.train.batch_size, max(1, len(warm_up) // most))
    checkpoints = train_classifier(
        classifier, warm_up, TrainConfig(epochs=1, batch_size=warm_up_batch, checkpoints_per_epoch=most, seed=args.seed)
    ).checkpoints
    run: dict[str, Any] = {
        "command": " ".join(["python -m benchmarks.influence_speed", *(argv if argv is not None else sys.argv[1:])]),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "model": args.model, "trainable_parameters": classifier.num_trainable, "device": str(classifier.device),
        "machine_at_start": machine(),
    }

    def subset(size: int) -> EncodedSet:
        return train_all.subset(range(size))

    check_train, check_queries = subset(args.check_train), queries.subset(range(args.check_queries))
    ours = gbair_tracin(classifier, checkpoints[: args.checkpoints], check_train, check_queries, args.batch_size)
    if not args.no_captum:
        theirs = captum_tracin(
            classifier, checkpoints[: args.checkpoints], check_train, check_queries, args.captum_batch_size, False
        )
        run["max_rel_diff_vs_captum"] = _relative_difference(ours, theirs.T)
        console.print(f"gbair vs Captum on {args.check_train} x {args.check_queries}: max relative difference "
                      f"{run['max_rel_diff_vs_captum']:.2e}")

    def epoch(size: int) -> float:
        classifier.load_pet_state(initial)
        _, seconds = _timed(lambda: train_classifier(classifier, subset(size), TrainConfig(epochs=1, seed=args.seed)))
        return seconds

    rows = []
    for size in args.sizes:
        cks = checkpoints[: args.checkpoints]
        row: dict[str, Any] = {"size": size, "checkpoints": len(cks)}
        _, row["gbair_s"] = _timed(lambda: gbair_tracin(classifier, cks, subset(size), queries, args.batch_size))
        row["epoch_s"] = epoch(size)
        if size in args.captum_sizes and not args.no_captum:
            summed, row["captum_s"] = _timed(
                lambda: captum_tracin(classifier, cks, subset(size), queries, args.captum_batch_size, True)
            )
            # The same check at full size, on the summed scores a G-BAIR round uses.
            ours_summed = gbair_tracin(classifier, cks, subset(size), queries, args.batch_size).sum(dim=1)
            row["summed_rel_diff_vs_captum"] = _relative_difference(ours_summed, summed)
        rows.append(row)
        console.print(row)
    run["by_size"] = rows
    reference = args.captum_sizes[0]
    run["by_checkpoints"] = []
    for count in args.checkpoint_counts:
        _, seconds = _timed(
            lambda: gbair_tracin(classifier, checkpoints[:count], subset(reference), queries, args.batch_size)
        )
        run["by_checkpoints"].append({"size": reference, "checkpoints": count, "gbair_s": seconds})
    run["captum_batch_sweep"] = []
    if not args.no_captum:
        sweep_set = subset(args.sweep_size)
        _, gbair_seconds = _timed(lambda: gbair_tracin(classifier, checkpoints[:1], sweep_set, queries, args.batch_size))
        for captum_batch in args.captum_batch_sweep:
            _, seconds = _timed(
                lambda: captum_tracin(classifier, checkpoints[:1], sweep_set, queries, captum_batch, True)
            )
            run["captum_batch_sweep"].append(
                {"size": args.sweep_size, "checkpoints": 1, "captum_batch_size": captum_batch, "captum_s": seconds,
                 "gbair_s": gbair_seconds}
            )
    at_reference = next(row for row in rows if row["size"] == reference)
    units = reference * at_reference["checkpoints"]
    run["reference"] = {"size": reference, "checkpoints": at_reference["checkpoints"], "queries": len(queries)}
    run["gbair_per_s"] = units / at_reference["gbair_s"]
    run["epoch_per_s"] = reference / at_reference["epoch_s"]
    # Cost per example-checkpoint of the influence pass over cost per example of a training epoch (target <= 1.3).
    run["gbair_cost_vs_epoch"] = run["epoch_per_s"] / run["gbair_per_s"]
    if "captum_s" in at_reference:
        run["captum_per_s"] = units / at_reference["captum_s"]
        run["gbair_speedup_vs_captum"] = run["gbair_per_s"] / run["captum_per_s"]
    run["machine_at_end"] = machine()
    if args.json:
        write_json(run, args.json)
    text = report(run)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "influence-speed.md").write_text(text)
        plot(run, args.out)
    return 0


def report(run: dict[str, Any]) -> str:
    header = ["training examples", "checkpoints", "gbair s", "gbair ex·ckpt/s", "epoch s", "epoch ex/s",
              "gbair cost / epoch cost", "Captum s", "Captum ex·ckpt/s"]
    rows = []
    for row in run["by_size"]:
        units = row["size"] * row["checkpoints"]
        captum = [f"{row['captum_s']:.1f}", f"{units / row['captum_s']:.1f}"] if "captum_s" in row else ["–", "–"]
        rows.append([row["size"], row["checkpoints"], f"{row['gbair_s']:.1f}", f"{units / row['gbair_s']:.1f}",
                     f"{row['epoch_s']:.1f}", f"{row['size'] / row['epoch_s']:.1f}",
                     f"{(row['gbair_s'] / units) / (row['epoch_s'] / row['size']):.2f}", *captum])
    text = markdown_table(header, rows)
    text += "\n" + markdown_table(
        ["training examples", "checkpoints", "gbair s", "s per checkpoint"],
        [[r["size"], r["checkpoints"], f"{r['gbair_s']:.1f}", f"{r['gbair_s'] / r['checkpoints']:.1f}"]
         for r in run["by_checkpoints"]],
    )
    if run["captum_batch_sweep"]:
        text += "\n" + markdown_table(
            ["training examples", "checkpoints", "Captum batch size", "Captum s",
             f"gbair s (batch {run['settings']['batch_size']})", "gbair speed-up"],
            [[r["size"], r["checkpoints"], r["captum_batch_size"], f"{r['captum_s']:.1f}", f"{r['gbair_s']:.1f}",
              f"{r['captum_s'] / r['gbair_s']:.1f}x"] for r in run["captum_batch_sweep"]],
        )
    headline = {k: run[k] for k in ("gbair_per_s", "captum_per_s", "epoch_per_s", "gbair_speedup_vs_captum",
                                    "gbair_cost_vs_epoch", "max_rel_diff_vs_captum") if k in run}
    return text + "\n" + "\n".join(f"- {k}: {v:.4g}" for k, v in headline.items()) + "\n"


def plot(run: dict[str, Any], folder: Path) -> None:
    sizes = [row["size"] for row in run["by_size"]]
    series = {
        "gbair influence pass": (sizes, [row["gbair_s"] for row in run["by_size"]]),
        "one training epoch": (sizes, [row["epoch_s"] for row in run["by_size"]]),
    }
    captum = [row for row in run["by_size"] if "captum_s" in row]
    if captum:
        series["Captum TracInCP"] = ([row["size"] for row in captum], [row["captum_s"] for row in captum])
    checkpoints = run["by_size"][0]["checkpoints"]
    line_plot(series, folder / "influence-speed-by-size.png", log=True,
              title=f"Cost against training-set size ({checkpoints} checkpoints for the influence passes)",
              xlabel="training examples", ylabel="seconds")
    counts = run["by_checkpoints"]
    line_plot({"gbair influence pass": ([r["checkpoints"] for r in counts], [r["gbair_s"] for r in counts])},
              folder / "influence-speed-by-checkpoints.png",
              title=f"gbair cost against checkpoints ({counts[0]['size']} training examples)",
              xlabel="checkpoints", ylabel="seconds", integer_x=True)


if __name__ == "__main__":
    raise SystemExit(run_main(main))
