"""What a finished recovery leaves in its output folder: the report, the best adapter and the cleaned set."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from gbair.core.backend import RoundBackend
from gbair.core.data import DataSplits, write_dataset
from gbair.core.recovery import RecoveryOutcome

REPORT_FILE = "report.json"
ADAPTER_DIR = "adapter"
CLEANED_DIR = "cleaned"
SUSPECTS_FILE = "suspects.csv"


@dataclass(frozen=True)
class RecoveryArtifacts:
    report: Path
    adapter: Path
    cleaned_train: Path
    suspects: Path


def write_artifacts(
    outcome: RecoveryOutcome, backend: RoundBackend, splits: DataSplits, out_dir: Path
) -> RecoveryArtifacts:
    """`backend` is the recovery's, which saves the best round's adapter."""
    out_dir.mkdir(parents=True, exist_ok=True)
    adapter = backend.save_adapter(outcome.best_state, out_dir / ADAPTER_DIR)
    cleaned_dir = out_dir / CLEANED_DIR
    cleaned_dir.mkdir(exist_ok=True)
    cleaned = write_dataset(outcome.best_train_set, splits.format, cleaned_dir)
    report = outcome.report.write(out_dir / REPORT_FILE)
    suspects = write_suspects(outcome, splits, out_dir / SUSPECTS_FILE)
    return RecoveryArtifacts(report=report, adapter=adapter, cleaned_train=cleaned, suspects=suspects)


def write_suspects(outcome: RecoveryOutcome, splits: DataSplits, path: Path) -> Path:
    """Every flagged example with its text, for a person to review: most suspicious first within a round."""
    train = splits.train
    corrupted = set(outcome.report.corrupted_ids)
    columns = ["round", "rank", "id", "score", "given_label", "relabeled_to", "text", "text_pair"]
    if corrupted:
        columns.append("label_was_flipped")
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for round_report in outcome.report.rounds:
            positions = train.positions(round_report.flagged_ids)
            for rank, (example_id, score, i) in enumerate(
                zip(round_report.flagged_ids, round_report.flagged_scores, positions), start=1
            ):
                row = {
                    "round": round_report.round,
                    "rank": rank,
                    "id": example_id,
                    "score": f"{score:.6g}",
                    "given_label": train.label_names[train.labels[i]],
                    "relabeled_to": round_report.relabels.get(example_id, ""),
                    "text": train.texts[i],
                    "text_pair": train.text_pairs[i] if train.text_pairs is not None else "",
                }
                if corrupted:
                    row["label_was_flipped"] = example_id in corrupted
                writer.writerow(row)
    return path
