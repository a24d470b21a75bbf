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
from typing import Callable

WEIGHT_DTYPES = ("checkpoint", "auto", "bf16", "fp16", "fp32", "fp8", "int8", "int4")
KV_DTYPES = ("auto", "bf16", "fp16", "fp8", "fp8_e4m3", "fp8_e5m2", "fp8_ds_mla")
# vLLM's own spellings, accepted wherever a dtype is asked for
DTYPE_ALIASES = {"bfloat16": "bf16", "float16": "fp16", "half": "fp16", "float32": "fp32", "float": "fp32"}
VLLM_VERSIONS = ("0.19", "0.21")      # budget profiles: 0.19 = graphs outside the budget; 0.21 = subtracted
DEFAULT_VLLM_VERSION = "0.21"
MAX_CELLS = 60_000_000                 # refuse absurd matrices, saying the size


class JobError(ValueError):
    """Invalid job: the message names the field and the allowed values."""


def parse_vllm_version(value, field: str = "matrix.vllm_version") -> str:
    """A vLLM version as users write it ("0.19", "0.19.0", "v0.21.1rc1") -> "MAJOR.MINOR".

    The budget rules change at 0.21 (CUDA graphs inside the budget); the overhead model is
    calibrated on 0.19 V1 logs, so versions before the V1 engine's profiler (0.10) are refused.
    """
    import re

    m = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?(?:[.+-]?[A-Za-z0-9.]*)?", str(value).strip())
    if not m or (int(m[1]), int(m[2])) < (0, 10):
        raise JobError(f"{field}: {value!r} is not allowed; allowed: a vLLM version from 0.10 on, "
                       f"e.g. {', '.join(VLLM_VERSIONS)} (profiles: before 0.21 CUDA graphs sit outside "
                       "the KV budget; from 0.21 they are subtracted)")
    return f"{int(m[1])}.{int(m[2])}"


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
    allow_long_max_model_len: bool | None = None  # None: follow VLLM_ALLOW_LONG_MAX_MODEL_LEN
    # vLLM --limit-mm-per-prompt ({"image": 0} = text only: no tower, no encoder profile; estimate/encoder.py)
    limit_mm_per_prompt: dict[str, int] | None = None

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
    weights: str = "config"          # "checkpoint": true bytes from safetensors headers (needs the hub)
    paper: str = "A4"                # report.pdf page size (landscape)
    source_path: str | None = None

    def inputs_hash(self) -> str:
        d = asdict(self)
        d.pop("source_path", None)
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def as_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------- parsing ---

TOP_KEYS = ("name", "models", "models_file", "gpus", "matrix", "catalogs", "templates", "formats", "weights", "paper")
PAPERS = ("A4", "Letter")
WEIGHT_SOURCES = ("config", "checkpoint")
FORMATS = ("parquet", "csv", "html", "pdf", "xlsx")
_LIST_INT_AXES = {"tp": (1, 1024), "pp": (1, 1024), "dp": (1, 4096),
                  "max_model_len": (16, 16_777_216), "concurrency": (1, 1_000_000)}
_SCALAR_INT = {"max_num_batched_tokens": (1, 16_777_216), "max_num_seqs": (1, 1_000_000),
               "block_size": (1, 4096), "gpus_per_node": (1, 1024), "max_nodes": (1, 100_000)}
MATRIX_KEYS = tuple(Matrix.__dataclass_fields__)


def _unknown(field_path: str, key: str, allowed) -> JobError:
    import difflib

    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return JobError(f"{field_path}: unknown field {key!r}{hint}; allowed: {', '.join(allowed)}")


def _as_list(value, field_path: str) -> list:
    if isinstance(value, list):
        if not value:
            raise JobError(f"{field_path}: must not be empty")
        return value
    return [value]


def _int_list(value, field_path: str, lo: int, hi: int) -> list[int]:
    out = []
    for v in _as_list(value, field_path):
        if isinstance(v, bool) or not isinstance(v, int):
            raise JobError(f"{field_path}: expected whole numbers from {lo} to {hi}, got {v!r}")
        if not lo <= v <= hi:
            raise JobError(f"{field_path}: {v} is out of range; allowed: {lo} to {hi}")
        out.append(v)
    return sorted(set(out))


def normalise_dtype(value: str) -> str:
    key = value.strip().lower()
    return DTYPE_ALIASES.get(key, key)


def _choice_list(value, field_path: str, allowed, aliases: bool = False) -> list[str]:
    out = []
    for v in _as_list(value, field_path):
        key = (normalise_dtype(v) if aliases else v.lower()) if isinstance(v, str) else None
        if key not in allowed:
            raise JobError(f"{field_path}: {v!r} is not allowed; allowed: {', '.join(allowed)}")
        if key not in out:
            out.append(key)
    return out


def parse_matrix(raw: dict, field_path: str = "matrix") -> Matrix:
    if not isinstance(raw, dict):
        raise JobError(f"{field_path}: must be a table ([matrix])")
    m = Matrix()
    for key, value in raw.items():
        fp = f"{field_path}.{key}"
        if key not in MATRIX_KEYS:
            raise _unknown(field_path, key, MATRIX_KEYS)
        if key in _LIST_INT_AXES:
            setattr(m, key, _int_list(value, fp, *_LIST_INT_AXES[key]))
        elif key == "ep":
            vals = _as_list(value, fp)
            if not all(isinstance(v, bool) for v in vals):
                raise JobError(f"{fp}: expected true/false values, got {value!r}")
            m.ep = sorted(set(vals))
        elif key == "weight_dtype":
            m.weight_dtype = _choice_list(value, fp, WEIGHT_DTYPES, aliases=True)
        elif key == "kv_cache_dtype":
            m.kv_cache_dtype = _choice_list(value, fp, KV_DTYPES, aliases=True)
        elif key == "gpu_memory_utilization":
            vals = _as_list(value, fp)
            for v in vals:
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1:
                    raise JobError(f"{fp}: {v!r} is not allowed; allowed: a number in (0, 1], e.g. 0.92")
            m.gpu_memory_utilization = sorted(set(float(v) for v in vals))
        elif key in _SCALAR_INT:
            lo, hi = _SCALAR_INT[key]
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise JobError(f"{fp}: {value!r} is not allowed; allowed: a whole number from {lo} to {hi}")
            setattr(m, key, value)
        elif key == "vllm_version":
            m.vllm_version = parse_vllm_version(value, fp)
        elif key in ("allow_cross_node_tp", "allow_long_max_model_len"):
            if not isinstance(value, bool):
                raise JobError(f"{fp}: expected true or false, got {value!r}")
            setattr(m, key, value)
        elif key == "limit_mm_per_prompt":
            from reportgen.estimate.encoder import parse_limits
            try:
                m.limit_mm_per_prompt = parse_limits(value)
            except ValueError as e:
                raise JobError(f"{field_path}.{e}") from None
    return m


def parse_model_line(line: str, where: str) -> ModelRef | None:
    """One `id[@revision]` per line; `#` starts a comment; blank lines skipped."""
    text = line.split("#", 1)[0].strip()
    if not text:
        return None
    mid, _, rev = text.partition("@")
    mid, rev = mid.strip(), rev.strip() or None
    if not mid or any(c.isspace() for c in mid):
        raise JobError(f"{where}: {text!r} is not a model id (expected org/name[@revision] or a path)")
    return ModelRef(mid, rev)


def _models_file_path(value: str, job_dir: Path) -> Path:
    """models_file is looked up beside the job file, then in model_lists/ (repo or package)."""
    from reportgen.paths import model_lists_dir

    p = Path(value)
    for cand in (p if p.is_absolute() else job_dir / p, model_lists_dir() / p):
        if cand.is_file():
            return cand
    raise JobError(f"models_file: {value!r} not found (looked beside the job file and in model_lists/)")


def parse_job(raw: dict, job_dir: Path = Path("."), source_path: str | None = None) -> Job:
    if not isinstance(raw, dict):
        raise JobError("job: must be a TOML table")
    for key in raw:
        if key not in TOP_KEYS:
            raise _unknown("job", key, TOP_KEYS)
    name = raw.get("name", Path(source_path).stem if source_path else "job")
    if not isinstance(name, str) or not name.strip():
        raise JobError("name: must be a non-empty string")
    models: list[ModelRef] = []
    if "models" in raw:
        vals = raw["models"]
        if not isinstance(vals, list) or not all(isinstance(v, str) for v in vals):
            raise JobError("models: expected a list of model ids (strings), e.g. [\"meta-llama/Llama-3.1-8B\"]")
        for i, v in enumerate(vals):
            ref = parse_model_line(v, f"models[{i}]")
            if ref:
                models.append(ref)
    if "models_file" in raw:
        if not isinstance(raw["models_file"], str):
            raise JobError("models_file: expected a file name under model_lists/")
        path = _models_file_path(raw["models_file"], job_dir)
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            ref = parse_model_line(line, f"models_file {path.name}:{n}")
            if ref:
                models.append(ref)
    models = list(dict.fromkeys(models))
    if not models:
        raise JobError("models: no models given; allowed: a `models = [...]` list and/or `models_file = \"name.txt\"`")
    gpus = raw.get("gpus")
    if gpus is None:
        raise JobError("gpus: missing; allowed: SKU ids or aliases from `reportgen gpus`, e.g. [\"H100\", \"L40S\"]")
    if isinstance(gpus, str):
        gpus = [gpus]
    if not isinstance(gpus, list) or not gpus or not all(isinstance(g, str) and g.strip() for g in gpus):
        raise JobError("gpus: expected a non-empty list of SKU ids, e.g. [\"H100\", \"L40S\"]")
    matrix = parse_matrix(raw.get("matrix", {}))
    catalogs = raw.get("catalogs", [])
    if not isinstance(catalogs, list) or not all(isinstance(c, str) for c in catalogs):
        raise JobError("catalogs: expected a list of CSV file paths")
    catalogs = [str((job_dir / c) if not Path(c).is_absolute() else Path(c)) for c in catalogs]
    for c in catalogs:
        if not Path(c).is_file():
            raise JobError(f"catalogs: {c!r} not found")
    templates = raw.get("templates")
    if templates is not None:
        if not isinstance(templates, str):
            raise JobError("templates: expected a directory path")
        tdir = Path(templates) if Path(templates).is_absolute() else job_dir / templates
        if not tdir.is_dir():
            raise JobError(f"templates: directory {templates!r} not found")
        templates = str(tdir)
    formats = _choice_list(raw.get("formats", ["parquet", "csv", "html", "pdf"]), "formats", FORMATS)
    paper = raw.get("paper", "A4")
    if not isinstance(paper, str) or paper.lower() not in ("a4", "letter"):
        raise JobError(f"paper: {paper!r} is not allowed; allowed: {', '.join(PAPERS)}")
    paper = "A4" if paper.lower() == "a4" else "Letter"
    weights = raw.get("weights", "config")
    if weights not in WEIGHT_SOURCES:
        raise JobError(f"weights: {weights!r} is not allowed; allowed: {', '.join(WEIGHT_SOURCES)}")
    for required in ("parquet", "csv"):
        if required not in formats:
            formats.insert(0, required)      # results are always kept; reports are optional
    return Job(name=name.strip(), models=models, gpus=[g.strip() for g in gpus], matrix=matrix,
               catalogs=catalogs, templates=templates, formats=formats, weights=weights, paper=paper,
               source_path=source_path)


def read_job_toml(path: str | Path) -> dict:
    """The job file as a raw table (before validation), so CLI overrides can be applied first."""
    p = Path(path)
    if not p.is_file():
        raise JobError(f"job file {str(p)!r} not found")
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise JobError(f"{p.name}: not valid TOML: {e}") from None
    except UnicodeDecodeError:
        raise JobError(f"{p.name}: not UTF-8 text") from None


def load_job(path: str | Path, overrides: Callable[[dict], None] | None = None) -> Job:
    """Read, optionally adjust the raw table (CLI --set), then validate completely."""
    raw = read_job_toml(path)
    if overrides is not None:
        overrides(raw)
    p = Path(path)
    return parse_job(raw, job_dir=p.parent, source_path=str(p))


def check_size(job: Job, n_gpus: int, limit: int = MAX_CELLS) -> int:
    """Refuse a matrix too large to be useful, saying the size it would have."""
    cells = len(job.models) * n_gpus * job.matrix.n_cells_per_model_gpu()
    if cells > limit:
        raise JobError(
            f"matrix: {cells:,} cells ({len(job.models)} models x {n_gpus} GPUs x "
            f"{job.matrix.n_cells_per_model_gpu():,} settings) exceeds the limit of {limit:,}; "
            "narrow an axis (tp, pp, dp, ep, weight_dtype, kv_cache_dtype, max_model_len, concurrency)")
    return cells
