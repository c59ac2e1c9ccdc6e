"""A frozen backbone prompt-tuned with peft into a K-class classifier.

Encoders read the class from mean-pooled hidden states through a small linear head; causal LMs read it
from the next-token logits of one label word per class (a verbalizer). Every forward pass also hands
out per-example views of the trainable parameters (the broadcast copies of the soft prompt and head),
so one backward pass gives each example's own gradient.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import PromptTuningConfig, PromptTuningInit, TaskType, get_peft_model
from peft.utils import load_peft_weights, set_peft_model_state_dict
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from gbair.core.config import ModelConfig
from gbair.core.model.backbones import load_backbone, locate_backbone, resolve_kind

PROMPT = "prompt"
HEAD_FILE = "classifier_head.safetensors"
CLASSIFIER_FILE = "gbair_classifier.json"
PetState = dict[str, torch.Tensor]


@dataclass
class PetOutput:
    logits: torch.Tensor
    """(batch, classes)"""
    parameter_views: dict[str, torch.Tensor]
    """For each trainable parameter, a tensor of this pass whose row b holds example b's own copy of it:
    the input embeddings (prompt first) for the soft prompt, the broadcast head for the head."""
    num_virtual_tokens: int

    def per_example_gradients(self, losses: torch.Tensor) -> torch.Tensor:
        """(batch, num_trainable): example b's loss depends only on row b of each view, so the gradient of
        the summed loss with respect to that row is example b's own gradient."""
        gradients = torch.autograd.grad(losses.sum(), list(self.parameter_views.values()))
        rows = losses.shape[0]
        flat = []
        for name, gradient in zip(self.parameter_views, gradients):
            if name == PROMPT:
                gradient = gradient[:, : self.num_virtual_tokens]
            flat.append(gradient.reshape(rows, -1))
        return torch.cat(flat, dim=1)


class PetClassifier(nn.Module):
    def __init__(
        self,
        backbone: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        kind: str,
        label_names: list[str],
        config: ModelConfig,
        label_word_ids: list[int] | None = None,
    ):
        super().__init__()
        if kind not in ("encoder", "causal-lm"):
            raise ValueError(f"unknown model kind {kind!r}")
        self.kind = kind
        self.label_names = list(label_names)
        self.config = config
        self.tokenizer = tokenizer
        for parameter in backbone.parameters():
            parameter.requires_grad_(False)
        peft_config = PromptTuningConfig(
            task_type=TaskType.CAUSAL_LM if kind == "causal-lm" else TaskType.FEATURE_EXTRACTION,
            num_virtual_tokens=config.num_virtual_tokens,
            prompt_tuning_init=PromptTuningInit.SAMPLE_VOCAB,
        )
        self.peft_model = get_peft_model(backbone, peft_config)
        hidden_size = backbone.get_input_embeddings().embedding_dim
        if kind == "encoder":
            self.head: nn.Linear | None = nn.Linear(hidden_size, len(label_names), dtype=backbone.dtype)
            self.register_buffer("label_word_ids", torch.empty(0, dtype=torch.long), persistent=False)
        else:
            self.head = None
            ids = label_word_ids if label_word_ids is not None else verbalizer_token_ids(
                tokenizer, config.label_words or label_names
            )
            self.register_buffer("label_word_ids", torch.tensor(ids, dtype=torch.long), persistent=False)
        # Dropout would make each example's gradient depend on the random state; the backbone is frozen
        # anyway, so it always runs in inference mode.
        self.peft_model.eval()

    @classmethod
    def build(
        cls, config: ModelConfig, label_names: list[str], seed: int = 0, label_word_ids: list[int] | None = None
    ) -> PetClassifier:
        location = locate_backbone(config.name_or_path)
        kind = resolve_kind(config, location)
        dtype = torch.float64 if config.dtype == "float64" else torch.float32
        backbone, tokenizer = load_backbone(location, kind, dtype)
        prepare_tokenizer(tokenizer, kind)
        torch.manual_seed(seed)
        return cls(backbone, tokenizer, kind, label_names, config, label_word_ids)

    def train(self, mode: bool = True) -> PetClassifier:
        super().train(mode)
        self.peft_model.eval()
        return self

    @property
    def prompt_encoder(self) -> nn.Module:
        return self.peft_model.prompt_encoder[self.peft_model.active_adapter]

    @property
    def prompt_embedding(self) -> nn.Embedding:
        return self.prompt_encoder.embedding

    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        parameters = {PROMPT: self.prompt_embedding.weight}
        if self.head is not None:
            parameters["head.weight"] = self.head.weight
            parameters["head.bias"] = self.head.bias
        return parameters

    @property
    def num_trainable(self) -> int:
        return sum(p.numel() for p in self.trainable_parameters().values())

    def pet_state(self) -> PetState:
        return {name: p.detach().clone() for name, p in self.trainable_parameters().items()}

    def seeded_state(self, seed: int) -> PetState:
        """The untrained state `build(seed=seed)` would start from, without loading another backbone: the same
        draws from the same seeded generator, in peft's and torch's order (the prompt embedding's own
        initialisation, overwritten by rows sampled from the vocabulary's embeddings, then the head's)."""
        embedding = self.prompt_embedding
        vocabulary = self.peft_model.get_base_model().get_input_embeddings()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            torch.empty(embedding.weight.shape).normal_()
            rows = torch.randint(0, vocabulary.num_embeddings, (embedding.num_embeddings,), dtype=torch.long)
            state = {PROMPT: vocabulary(rows.to(vocabulary.weight.device)).detach().to(embedding.weight.dtype)}
            if self.head is not None:
                head = nn.Linear(self.head.in_features, self.head.out_features, dtype=self.head.weight.dtype)
                state |= {"head.weight": head.weight.detach(), "head.bias": head.bias.detach()}
        return {name: tensor.to(self.device) for name, tensor in state.items()}

    def load_pet_state(self, state: PetState) -> None:
        with torch.no_grad():
            for name, parameter in self.trainable_parameters().items():
                parameter.copy_(state[name])

    @property
    def device(self) -> torch.device:
        return self.prompt_embedding.weight.device

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> PetOutput:
        captured: dict[str, torch.Tensor] = {}
        # peft builds one prompt and repeats it over the batch inside the backbone's input embeddings;
        # those embeddings are the per-example copies of the prompt.
        hooks = [
            self.peft_model.get_base_model().register_forward_pre_hook(
                _store_input_embeddings(captured), with_kwargs=True
            )
        ]
        if self.kind == "causal-lm":
            decoder = self.peft_model.get_base_model().get_decoder()
            hooks.append(decoder.register_forward_hook(_store_output(captured, "hidden")))
        try:
            outputs = self.peft_model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                **({"logits_to_keep": 1} if self.kind == "causal-lm" else {}),
            )
        finally:
            for hook in hooks:
                hook.remove()
        views = {PROMPT: captured[PROMPT]}
        prompt_mask = attention_mask.new_ones(attention_mask.shape[0], self.config.num_virtual_tokens)
        full_mask = torch.cat([prompt_mask, attention_mask], dim=1)
        if self.kind == "encoder":
            logits = self._head_logits(_mean_pool(outputs.last_hidden_state, full_mask), views)
        else:
            logits = self._verbalizer_logits(captured["hidden"], full_mask)
        return PetOutput(logits=logits, parameter_views=views, num_virtual_tokens=self.config.num_virtual_tokens)

    def _head_logits(self, pooled: torch.Tensor, views: dict[str, torch.Tensor]) -> torch.Tensor:
        batch = pooled.shape[0]
        weight = self.head.weight.expand(batch, *self.head.weight.shape)
        bias = self.head.bias.expand(batch, *self.head.bias.shape)
        views["head.weight"], views["head.bias"] = weight, bias
        return torch.einsum("bkd,bd->bk", weight, pooled) + bias

    def _verbalizer_logits(self, hidden: torch.Tensor, full_mask: torch.Tensor) -> torch.Tensor:
        # Inputs are right-padded, so each example's next-token prediction sits at its last real position.
        last = full_mask.sum(dim=1) - 1
        final = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        output_embeddings = self.peft_model.get_base_model().get_output_embeddings()
        logits = final @ output_embeddings.weight[self.label_word_ids].T
        if getattr(output_embeddings, "bias", None) is not None:
            logits = logits + output_embeddings.bias[self.label_word_ids]
        return logits

    def save_adapter(self, directory: str | Path) -> Path:
        """peft's own format for the soft prompt, plus the head and label names beside it."""
        directory = Path(directory)
        self.peft_model.save_pretrained(str(directory))
        if self.head is not None:
            save_file({k: v.detach().contiguous() for k, v in self.head.state_dict().items()}, directory / HEAD_FILE)
        description = {
            "kind": self.kind,
            "label_names": self.label_names,
            "label_word_ids": self.label_word_ids.tolist(),
            "model": self.config.model_copy(update={"kind": self.kind}).model_dump(),
        }
        (directory / CLASSIFIER_FILE).write_text(json.dumps(description, indent=2))
        return directory

    @classmethod
    def load_adapter(cls, directory: str | Path) -> PetClassifier:
        directory = Path(directory)
        description = json.loads((directory / CLASSIFIER_FILE).read_text())
        classifier = cls.build(
            ModelConfig(**description["model"]),
            description["label_names"],
            label_word_ids=description["label_word_ids"] or None,
        )
        set_peft_model_state_dict(classifier.peft_model, load_peft_weights(str(directory)))
        if classifier.head is not None:
            classifier.head.load_state_dict(load_file(directory / HEAD_FILE))
        return classifier


def _store_input_embeddings(captured: dict[str, torch.Tensor]):
    def hook(module, args, kwargs):
        captured[PROMPT] = kwargs["inputs_embeds"]

    return hook


def _store_output(captured: dict[str, torch.Tensor], key: str):
    def hook(module, inputs, output):
        captured[key] = output[0] if isinstance(output, tuple) else getattr(output, "last_hidden_state", output)

    return hook


def _mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1)


def prepare_tokenizer(tokenizer: PreTrainedTokenizerBase, kind: str) -> None:
    if kind == "causal-lm":
        tokenizer.padding_side = "right"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token


def verbalizer_token_ids(tokenizer: PreTrainedTokenizerBase, words: list[str]) -> list[int]:
    """The first token of each label word (as it appears after a space); they must differ."""
    ids = [tokenizer(" " + word.strip(), add_special_tokens=False)["input_ids"][0] for word in words]
    if len(set(ids)) != len(ids):
        pieces = [tokenizer.convert_ids_to_tokens(i) for i in ids]
        raise ValueError(f"label words {words} share first tokens {pieces}; choose words that start differently")
    return ids
