"""Validated settings for the model, training, influence scoring and the G-BAIR round loop."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_MODEL = "all-minilm-l6-v2"

ScoringMethod = Literal[
    "tracin-class-loss", "tracin", "tracin-class", "tracin-cos", "fused", "vote", "self-influence", "loss",
    "random", "dda", "dda-debias", "dda-denoise", "confident-learning", "ensemble", "aum", "cartography", "knn",
]
CleaningAction = Literal["remove", "relabel"]


class _Settings(BaseModel):
    # A NaN or infinite number is refused as such, not against whichever bound is checked first.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ModelConfig(_Settings):
    """Which frozen backbone to prompt-tune and how inputs are shaped."""

    name_or_path: str = Field(
        DEFAULT_MODEL,
        description="'all-minilm-l6-v2' (bundled), 'smollm2-135m' (bundled GGUF), a local model folder, "
        "a .gguf file, or a hub id.",
    )
    kind: Literal["auto", "encoder", "causal-lm"] = Field(
        "auto", description="encoder: mean pooling + linear head; causal-lm: verbalizer on next-token logits."
    )
    num_virtual_tokens: int = Field(16, ge=1, le=512)
    max_length: int = Field(128, ge=8, le=4096, description="Token budget for the text, prompt excluded.")
    label_words: list[str] | None = Field(
        None, description="Verbalizer words for causal LMs, one per class; default: the label names."
    )
    prompt_suffix: str = Field("\nAnswer:", description="Appended to each input of a causal LM.")
    dtype: Literal["float32", "float64"] = "float32"


class TrainConfig(_Settings):
    epochs: int = Field(3, ge=1, le=1000)
    batch_size: int = Field(32, ge=1, le=4096)
    learning_rate: float = Field(1e-2, gt=0, le=10)
    weight_decay: float = Field(0.0, ge=0)
    checkpoints_per_epoch: int = Field(1, ge=1, le=100)
    seed: int = 0
    device: str = Field("auto", description="'auto' picks CUDA when present, else CPU.")


class InfluenceConfig(_Settings):
    method: ScoringMethod = "tracin-class-loss"
    batch_size: int = Field(64, ge=1, le=4096)
    vote_top_fraction: float = Field(
        0.1, gt=0, le=1, description="For 'vote': share of the training set counted as a validation example's top opponents."
    )
    confident_learning_folds: int = Field(
        5, ge=2, le=20, description="For 'confident-learning': K in the K-fold training that gives out-of-sample probabilities."
    )
    knn_neighbours: int = Field(
        10, ge=1, le=1000, description="For 'knn': neighbours compared on the frozen backbone's embeddings."
    )
    seed: int = 0


class RecoveryConfig(_Settings):
    rounds: int = Field(3, ge=0, le=100, description="Cleaning rounds after round 0 (the data as given).")
    budget: float = Field(
        0.1, gt=0, description="Examples flagged per round: a fraction of the current set if < 1, else a count."
    )
    action: CleaningAction = "remove"
    patience: int = Field(1, ge=1, description="Stop after this many rounds without a better validation accuracy.")
    round_trainings: int = Field(
        2, ge=1, le=16,
        description="Trainings of each round's data, the first from the job's seed, the others from other "
        "initial prompts and batch orders. The round's validation accuracy is their mean, so that one "
        "training's luck does not pick the round. The first training is the one scored; the one most accurate "
        "on those trusted examples is the round's model, exported if the job keeps the round. "
        "1: G-BAIR as published, half the training time.",
    )
    selection_fraction: float = Field(
        0.0, ge=0, lt=1,
        description="Share of the trusted set held out from scoring: its accuracy alone picks the best round and "
        "stops the loop, while the rest's mistakes drive the scoring. 0: the whole set does both (G-BAIR as published).",
    )

    @field_validator("budget")
    @classmethod
    def _whole_count(cls, budget: float) -> float:
        if budget >= 1 and budget != int(budget):
            raise ValueError("a budget of 1 or more is a count of examples and must be a whole number")
        return budget

    def flag_count(self, train_size: int) -> int:
        count = round(self.budget * train_size) if self.budget < 1 else int(self.budget)
        return max(1, min(count, train_size - 1))


class GbairConfig(_Settings):
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    influence: InfluenceConfig = InfluenceConfig()
    recovery: RecoveryConfig = RecoveryConfig()

    @model_validator(mode="after")
    def _label_words_need_causal_lm(self) -> GbairConfig:
        if self.model.label_words is not None and self.model.kind == "encoder":
            raise ValueError("label_words are a causal-LM verbalizer; an encoder uses a linear head")
        return self

    def with_training_seed(self, seed: int | None) -> GbairConfig:
        """These settings with `seed` drawing the batch order (None: unchanged)."""
        if seed is None:
            return self
        return self.model_copy(update={"train": self.train.model_copy(update={"seed": seed})})
