"""Silence the engine's libraries: their chatter (weight-loading bars, deprecation notices) would bury
gbair's own progress bars and log."""

from __future__ import annotations

import warnings

import transformers


def quiet_engine_libraries() -> None:
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)
