"""The prompt-tuned classifier: backbone loading, the peft model with its head or verbalizer, and inputs."""

from gbair.core.model.backbones import BUNDLED_MINILM, BUNDLED_SMOLLM2, locate_backbone
from gbair.core.model.inputs import Batch, EncodedSet, TextEncoder, encode
from gbair.core.model.pet import PetClassifier, PetOutput, PetState

__all__ = [
    "BUNDLED_MINILM",
    "BUNDLED_SMOLLM2",
    "Batch",
    "EncodedSet",
    "PetClassifier",
    "PetOutput",
    "PetState",
    "TextEncoder",
    "encode",
    "locate_backbone",
]
