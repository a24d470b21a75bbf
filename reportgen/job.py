"""The job file: what to evaluate.  Parsed and validated completely before any work.

A job is TOML.  Every field has a default (vLLM's own where one exists), so a
job can be three lines: a name, models, gpus.  Validation errors name the field
and the allowed values; nothing is written when the job is invalid (exit 2).
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

WEIGHT_DTYPES = ("checkpoint", "auto", "bf16", "fp16", "fp32", "fp8", "int8", "int4")
KV_DTYPES = ("auto", "bf16", "fp16", "fp8", "fp8_e4m3", "fp8_e5m2", "fp8_ds_mla")
VLLM_VERSIONS = ("0.19", "0.21")      # budget profiles: 0.19 = graphs outside the budget; 0.21 = subtracted
DEFAULT_VLLM_VERSION = "0.21"
MAX_CELLS = 60_000_000                 # refuse absurd matrices, saying the size


class JobError(ValueError):
    """Invalid job: the message names the field and the allowed values."""


@dataclass(frozen=True)
class ModelRef:
    id: str
    revision: str | None = None

    def __str__(self) -> str:
        return self.id if not self.revision else f"{self.id}@{self.revision}"


@dataclass
class Matrix:
    """The axes of the cross product and the vLLM engine settings.

    ``max_num_batched_tokens`` / ``max_num_seqs`` None means vLLM's default for the
    GPU (engine/arg_utils.py: >=70 GiB non-A100 GPUs 8192 / 1024 for the API
    server, smaller GPUs 2048 / 256).
    """

    tp: list[int] = field(default_factory=lambda: [1])
    pp: list[int] = field(default_factory=lambda: [1])
    dp: list[int] = field(default_factory=lambda: [1])
    ep: list[bool] = field(default_factory=lambda: [False])
    weight_dtype: list[str] = field(default_factory=lambda: ["checkpoint"])
    kv_cache_dtype: list[str] = field(default_factory=lambda: ["auto"])
    max_model_len: list[int] = field(default_factory=lambda: [8192])
    concurrency: list[int] = field(default_factory=lambda: [1])
    gpu_memory_utilization: list[float] = field(default_factory=lambda: [0.92])
    max_num_batched_tokens: int | None = None
    max_num_seqs: int | None = None
    block_size: int = 16
    vllm_version: str = DEFAULT_VLLM_VERSION
    gpus_per_node: int | None = None          # None: the SKU's own
    max_nodes: int = 1
    allow_cross_node_tp: bool = False

    def n_layouts(self) -> int:
        return len(self.tp) * len(self.pp) * len(self.dp) * len(self.ep)

    def n_cells_per_model_gpu(self) -> int:
        return (self.n_layouts() * len(self.weight_dtype) * len(self.kv_cache_dtype)
                * len(self.max_model_len) * len(self.concurrency) * len(self.gpu_memory_utilization))


@dataclass
class Job:
    name: str
    models: list[ModelRef]
    gpus: list[str]
    matrix: Matrix = field(default_factory=Matrix)
    catalogs: list[str] = field(default_factory=list)      # user GPU catalog CSVs
    templates: str | None = None                           # user template directory
    formats: list[str] = field(default_factory=lambda: ["parquet", "csv", "html", "pdf"])
    source_path: str | None = None

    def inputs_hash(self) -> str:
        d = asdict(self)
        d.pop("source_path", None)
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def as_dict(self) -> dict:
        return asdict(self)
