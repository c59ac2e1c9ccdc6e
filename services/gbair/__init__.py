"""gbair: find and fix mislabeled training data for parameter-efficient tuning (G-BAIR)."""

__version__ = "0.1.0"
