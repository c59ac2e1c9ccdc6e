"""A job's spec: which data set, and the few G-BAIR settings a caller may change, checked field by field."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gbair.core.config import GbairConfig
from gbair.coordinator.errors import InvalidArgument

# Spec field -> where it lives in GbairConfig.
CONFIG_FIELDS: dict[str, tuple[str, str]] = {
    "model": ("model", "name_or_path"),
    "virtual_tokens": ("model", "num_virtual_tokens"),
    "max_length": ("model", "max_length"),
    "epochs": ("train", "epochs"),
    "batch_size": ("train", "batch_size"),
    "learning_rate": ("train", "learning_rate"),
    "seed": ("train", "seed"),
    "method": ("influence", "method"),
    "action": ("recovery", "action"),
    "rounds": ("recovery", "rounds"),
    "budget": ("recovery", "budget"),
    "patience": ("recovery", "patience"),
    "round_trainings": ("recovery", "round_trainings"),
}


class JobSpec(BaseModel):
    """Unset (None) settings take the server's `job_defaults`."""

    # NaN passes no bound, so without this a NaN would be reported against whichever bound is checked first.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    dataset_id: str = Field(min_length=1, max_length=64)
    model: str | None = None
    method: str | None = None
    action: str | None = None
    rounds: int | None = None
    budget: float | None = None
    patience: int | None = None
    round_trainings: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    virtual_tokens: int | None = None
    max_length: int | None = None
    seed: int | None = None
    train_size: int | None = Field(None, ge=1, description="A seeded subsample of the training file.")
    val_size: int | None = Field(None, ge=1, description="A seeded subsample of the validation data.")
    corrupt: float = Field(0.0, ge=0, lt=1, description="Flip this fraction of training labels (experiments).")

    def config(self, defaults: GbairConfig, models: list[str]) -> GbairConfig:
        """The full G-BAIR settings; a bad value raises InvalidArgument naming the spec field."""
        if self.model is not None and self.model not in models:
            raise InvalidArgument("spec.model", f"'{self.model}' is not offered by this server; choose one of {models}")
        data = defaults.model_dump()
        data["model"]["name_or_path"] = models[0] if self.model is None else self.model
        for field, (section, key) in CONFIG_FIELDS.items():
            value = getattr(self, field)
            if value is not None:
                data[section][key] = value
        # The influence seed follows the training seed, as `gbair recover --seed` does.
        data["influence"]["seed"] = data["train"]["seed"]
        try:
            return GbairConfig.model_validate(data)
        except ValidationError as error:
            raise InvalidArgument(*_spec_field(error)) from None


def validated_spec(fields: dict) -> JobSpec:
    try:
        return JobSpec.model_validate(fields)
    except ValidationError as error:
        raise InvalidArgument(*_spec_field(error)) from None


def _spec_field(error: ValidationError) -> tuple[str, str]:
    first = error.errors()[0]
    location = tuple(str(part) for part in first["loc"])
    by_config_path = {path: field for field, path in CONFIG_FIELDS.items()}
    field = by_config_path.get(location[:2], ".".join(location) or "spec")
    return f"spec.{field}", first["msg"]
