"""Coordinator settings: a YAML file, then GBAIR_* environment variables over it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, FilePath, model_validator

from gbair.core.config import DEFAULT_MODEL, GbairConfig
from gbair.distributed.config import RayConfig

MiB = 1024 * 1024
LEASE_TTL_S = 15.0
REDIS_RETRIES = 5


class TokenEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    token: str = Field(min_length=16, description="A bearer token; at least 16 characters.")
    tenant: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    read_only: bool = False


class CoordinatorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    listen: str = Field("127.0.0.1:50051", description="host:port the gRPC server binds.")
    redis_url: str | None = Field(None, description="None: start a local redis-server in state_dir.")
    redis_prefix: str = Field("gbair", pattern=r"^[A-Za-z0-9_.:-]+$", description="Prefix of every Redis key.")
    backend: Literal["ray", "local"] = Field(
        "ray", description="Where rounds run. 'ray': Ray Train and the Ray Serve influence service; 'local': in this process."
    )
    ray: RayConfig = Field(RayConfig(), description="The cluster (address None: a local one), workers, influence service.")
    state_dir: Path = Field(Path("gbair-state"), description="Uploaded data sets, job folders, the local Redis.")
    tokens: list[TokenEntry] = Field(default_factory=list)
    tls_cert: FilePath | None = None
    tls_key: FilePath | None = None
    max_request_bytes: int = Field(4 * MiB, ge=1024, description="Largest single gRPC message accepted.")
    max_upload_bytes: int = Field(256 * MiB, ge=1024, description="Largest data set upload, all files together.")
    max_queued_jobs: int = Field(20, ge=1, description="Queued or running jobs one tenant may have at once.")
    max_concurrent_jobs: int = Field(1, ge=1, le=64, description="Jobs running at once.")
    max_concurrent_rpcs: int = Field(
        1000, ge=1, description="Calls the gRPC server serves at once, open WatchJob streams included; more are refused."
    )
    max_watch_streams_per_tenant: int = Field(64, ge=1, description="WatchJob streams one tenant may hold open at once.")
    max_heavy_calls_per_tenant: int = Field(
        2, ge=1,
        description="ExplainExample, export and rerun calls one tenant may run at once, whatever its tokens' scope; more are refused.",
    )
    heavy_workers: int = Field(
        1, ge=1, le=64,
        description="Threads for model work and exports, shared by all tenants; each takes a core from the calls and jobs.",
    )
    explain_cache_rounds: int = Field(
        4, ge=1, description="Rounds whose model, predictions and gradients are kept in memory for ExplainExample."
    )
    lease_ttl_s: float = Field(
        LEASE_TTL_S, ge=1.0, le=3600.0, allow_inf_nan=False,
        description="A running job's lease, renewed every third of it; a coordinator silent for this long loses its jobs to others.",
    )
    redis_retries: int = Field(
        REDIS_RETRIES, ge=0, le=20, description="Retries of one Redis command, with exponential backoff, before a call fails UNAVAILABLE.",
    )
    torch_threads: int | None = Field(None, ge=1, description="torch intra-op threads; None keeps torch's default.")
    models: list[str] = Field([DEFAULT_MODEL], min_length=1, description="Models a job may name; the first is the default.")
    job_defaults: GbairConfig = Field(GbairConfig(), description="Settings a job spec does not override.")
    max_datasets_per_tenant: int = Field(100, ge=1, description="Data sets one tenant may keep.")
    max_dataset_bytes_per_tenant: int = Field(
        10 * 1024 * MiB, ge=1024, description="Bytes of uploaded files one tenant may keep, all data sets together."
    )
    job_retention_s: float | None = Field(
        None, gt=0, description="Seconds after a job ends that its folder (trained rounds, adapter) is removed; None: kept."
    )
    retention_deletes_records: bool = Field(
        False, description="Past job_retention_s, also delete the job's record (as DeleteJob does), not only its folder."
    )
    cleanup_interval_s: float = Field(
        600.0, gt=0, description="How often expired job folders and stale partial uploads are swept, after the sweep at start-up."
    )
    partial_upload_max_age_s: float = Field(
        600.0, gt=0, description="A partial upload untouched this long was left by a killed coordinator and is removed."
    )

    @model_validator(mode="after")
    def _tls_needs_both_files(self) -> CoordinatorSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("TLS needs both tls_cert and tls_key")
        return self

    @property
    def datasets_dir(self) -> Path:
        return self.state_dir / "datasets"

    @property
    def jobs_dir(self) -> Path:
        return self.state_dir / "jobs"


# Environment variables read over the file; GBAIR_TOKENS is "token=tenant[:read],token=tenant,...".
_ENVIRONMENT = {
    "GBAIR_LISTEN": "listen",
    "GBAIR_REDIS_URL": "redis_url",
    "GBAIR_REDIS_PREFIX": "redis_prefix",
    "GBAIR_BACKEND": "backend",
    "GBAIR_STATE_DIR": "state_dir",
    "GBAIR_TLS_CERT": "tls_cert",
    "GBAIR_TLS_KEY": "tls_key",
    "GBAIR_MAX_CONCURRENT_JOBS": "max_concurrent_jobs",
}
# ... and over its `ray` section: what differs between a CPU and a GPU deployment of the same settings file.
_RAY_ENVIRONMENT = {
    "GBAIR_RAY_ADDRESS": "address",
    "GBAIR_RAY_USE_GPU": "use_gpu",
    "GBAIR_RAY_STORAGE_PATH": "storage_path",
}


def load_settings(path: Path | None = None, environ: dict[str, str] | None = None, **overrides) -> CoordinatorSettings:
    """File first, then the environment, then `overrides` (command-line options that were given)."""
    environ = os.environ if environ is None else environ
    data = (yaml.safe_load(path.read_text()) or {}) if path is not None else {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of settings")
    data.update({field: environ[name] for name, field in _ENVIRONMENT.items() if environ.get(name)})
    ray_overrides = {field: environ[name] for name, field in _RAY_ENVIRONMENT.items() if environ.get(name)}
    if ray_overrides:
        data["ray"] = {**data.get("ray", {}), **ray_overrides}
    if environ.get("GBAIR_TOKENS"):
        data["tokens"] = [*data.get("tokens", []), *parse_tokens(environ["GBAIR_TOKENS"])]
    data.update({key: value for key, value in overrides.items() if value is not None})
    return CoordinatorSettings.model_validate(data)


def parse_tokens(text: str) -> list[dict]:
    entries = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        token, separator, tenant = item.partition("=")
        if not separator:
            raise ValueError("GBAIR_TOKENS entries are token=tenant or token=tenant:read")
        tenant, _, role = tenant.partition(":")
        if role not in ("", "read"):
            raise ValueError(f"GBAIR_TOKENS: unknown role '{role}' for tenant '{tenant}' (only ':read')")
        entries.append({"token": token, "tenant": tenant, "read_only": role == "read"})
    return entries
