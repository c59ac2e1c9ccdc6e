"""Labeled text data: loading, synthetic label noise and writing cleaned sets back."""

from gbair.core.data.corruption import corrupt_labels, pair_flips, true_label_names
from gbair.core.data.dataset import DataError, DataSplits, TextDataset
from gbair.core.data.loaders import load_splits
from gbair.core.data.named_readers import NAMED_SETS
from gbair.core.data.sources import ColumnNames
from gbair.core.data.writers import write_dataset

__all__ = [
    "NAMED_SETS",
    "ColumnNames",
    "DataError",
    "DataSplits",
    "TextDataset",
    "corrupt_labels",
    "load_splits",
    "pair_flips",
    "true_label_names",
    "write_dataset",
]
