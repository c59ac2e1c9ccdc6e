"""What a finished recovery leaves in its output folder: the report, the best adapter and the cleaned set."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gbair.core.data import DataSplits, write_dataset
from gbair.core.model.pet import PetClassifier
from gbair.core.recovery import RecoveryOutcome

REPORT_FILE = "report.json"
ADAPTER_DIR = "adapter"
CLEANED_DIR = "cleaned"


@dataclass(frozen=True)
class RecoveryArtifacts:
    report: Path
    adapter: Path
    cleaned_train: Path


def write_artifacts(
    outcome: RecoveryOutcome, classifier: PetClassifier, splits: DataSplits, out_dir: Path
) -> RecoveryArtifacts:
    out_dir.mkdir(parents=True, exist_ok=True)
    classifier.load_pet_state(outcome.best_state)
    adapter = classifier.save_adapter(out_dir / ADAPTER_DIR)
    cleaned_dir = out_dir / CLEANED_DIR
    cleaned_dir.mkdir(exist_ok=True)
    cleaned = write_dataset(outcome.best_train_set, splits.format, cleaned_dir)
    report = outcome.report.write(out_dir / REPORT_FILE)
    return RecoveryArtifacts(report=report, adapter=adapter, cleaned_train=cleaned)
