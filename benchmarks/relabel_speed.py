"""Relabel suggestions at growing numbers of classes: gbair's one forward-mode pass per checkpoint against
the definition's one backward pass per candidate label, on the same examples and checkpoint. Both pick
the argmax over y' of eta g(x, y') . G; the table says whether they agree. Prints a table and writes JSON.

Bundled BANKING77 (77 intents), so no data folder is needed; for K < 77 classes the first K intents and
labels modulo K. The checkpoint is the initial prompt and head moved by a seeded random step, and G the
summed gradient of the validation examples the model gets wrong there.

    .venv/bin/python -m benchmarks.relabel_speed --json benchmarks/results/relabel_speed.json
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from benchmarks.common import machine, run_main, write_json
from gbair.core.config import ModelConfig
from gbair.core.data import DataSplits, TextDataset, load_splits
from gbair.core.evaluation import predict_probabilities
from gbair.core.influence import QueryGradients, query_gradients, suggest_labels
from gbair.core.model import EncodedSet, PetClassifier, encode
from gbair.core.training import Checkpoint


def per_label_suggestions(
    classifier: PetClassifier, checkpoint: Checkpoint, examples: EncodedSet, queries: QueryGradients, batch_size: int
) -> list[int]:
    """The definition, one backward pass per candidate label."""
    classifier.load_pet_state(checkpoint.state)
    support = torch.zeros(len(examples), len(classifier.label_names), dtype=torch.float64)
    target = queries.summed[0].to(classifier.device)
    for batch in examples.batches(batch_size):
        batch = batch.to(classifier.device)
        for label in range(len(classifier.label_names)):
            output = classifier(batch.input_ids, batch.attention_mask)
            losses = F.cross_entropy(output.logits, torch.full_like(batch.labels, label), reduction="none")
            gradients = output.per_example_gradients(losses).detach()
            support[batch.positions.cpu(), label] = (checkpoint.learning_rate * (gradients @ target)).double().cpu()
    support[torch.arange(len(examples)), examples.labels] = -torch.inf
    return support.argmax(dim=1).tolist()


def restricted(dataset: TextDataset, classes: int) -> TextDataset:
    return replace(dataset, labels=[label % classes for label in dataset.labels], label_names=dataset.label_names[:classes])


def measure(model: ModelConfig, splits: DataSplits, classes: int, examples: int, batch_size: int) -> dict[str, Any]:
    classifier = PetClassifier.build(model, splits.label_names[:classes])
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in classifier.trainable_parameters().values():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))
    checkpoint = Checkpoint(step=1, epoch=1.0, learning_rate=0.03, state=classifier.pet_state())
    flagged = encode(classifier, restricted(splits.train, classes)).subset(range(examples))
    validation = encode(classifier, restricted(splits.validation, classes))
    with torch.no_grad():
        wrong = (predict_probabilities(classifier, validation, batch_size).argmax(dim=1) != validation.labels).nonzero()
    queries = query_gradients(classifier, [checkpoint], validation.subset(wrong.flatten().tolist()), batch_size)

    started = time.perf_counter()
    reference = per_label_suggestions(classifier, checkpoint, flagged, queries, batch_size)
    per_label_s = time.perf_counter() - started
    started = time.perf_counter()
    suggested = suggest_labels(classifier, [checkpoint], flagged, queries, batch_size)
    forward_mode_s = time.perf_counter() - started
    return {
        "classes": classes,
        "examples": examples,
        "validation_errors": len(wrong),
        "per_label_backward_s": round(per_label_s, 2),
        "forward_mode_s": round(forward_mode_s, 2),
        "speedup": round(per_label_s / forward_mode_s, 1),
        "same_suggestions": sum(a == b for a, b in zip(reference, suggested)) / examples,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=ModelConfig().name_or_path, help="a local folder or hub id")
    parser.add_argument("--classes", type=int, nargs="+", default=[2, 10, 77])
    parser.add_argument("--examples", type=int, default=64, help="flagged examples to suggest labels for")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/relabel_speed.json"))
    args = parser.parse_args(argv)
    if any(not 2 <= classes <= 77 for classes in args.classes):
        parser.error("--classes must lie between 2 and 77 (BANKING77's intents)")
    model = ModelConfig(name_or_path=args.model)
    splits = load_splits("banking77", train_size=1000, val_size=200, seed=0)
    rows = [measure(model, splits, classes, args.examples, args.batch_size) for classes in args.classes]
    command = " ".join(["python -m benchmarks.relabel_speed", *(argv if argv is not None else sys.argv[1:])])
    write_json({"command": command, "machine": machine(), "model": args.model, "rows": rows}, args.json)
    table = Table(title=f"relabel suggestions for {args.examples} BANKING77 examples, one checkpoint, {args.model}")
    for column in ("classes", "per-label backward s", "forward mode s", "speed-up", "same suggestions"):
        table.add_column(column)
    for row in rows:
        table.add_row(str(row["classes"]), f"{row['per_label_backward_s']:.2f}", f"{row['forward_mode_s']:.2f}",
                      f"{row['speedup']:.1f}×", f"{row['same_suggestions']:.0%}")
    Console().print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
