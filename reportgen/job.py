"""The job file: what to evaluate.  Parsed and validated completely before any work.

A job is TOML.  Every field has a default (vLLM's own where one exists), so a
job can be three lines: a name, models, gpus.  Validation errors name the field
and the allowed values; nothing is written when the job is invalid (exit 2).
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import InitVar, asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

# `weights_as`: a what-if re-quantization of the weights ("checkpoint" = as shipped).  NOT vLLM's
# --dtype: that is `dtype` below and never re-types a pre-quantized checkpoint.  "auto" is kept as
# a spelling of "checkpoint" (the old `weight_dtype` axis accepted it).
WEIGHTS_AS = ("checkpoint", "bf16", "fp16", "fp32", "fp8", "int8", "int4")
WEIGHT_DTYPES = WEIGHTS_AS            # the name before the split (kept for imports)
# vLLM --dtype (ModelConfig.dtype): the model / activation dtype
MODEL_DTYPES = ("auto", "bf16", "fp16", "fp32")
KV_DTYPES = ("auto", "bf16", "fp16", "fp8", "fp8_e4m3", "fp8_e5m2", "fp8_ds_mla")
# vLLM's own spellings, accepted wherever a dtype is asked for
DTYPE_ALIASES = {"bfloat16": "bf16", "float16": "fp16", "half": "fp16", "float32": "fp32", "float": "fp32"}
# budget profiles (first release of each range, "0.11" = 0.11.0; reportgen/estimate/profiles.py); the default is
# the newest release read
VLLM_VERSIONS = ("0.10", "0.11", "0.11.1", "0.17", "0.20", "0.20.1", "0.25", "0.26", "0.29", "0.34")
DEFAULT_VLLM_VERSION = "0.34"
MAX_CELLS = 60_000_000                 # refuse absurd matrices, saying the size


class JobError(ValueError):
    """Invalid job: the message names the field and the allowed values."""


def parse_vllm_version(value, field: str = "matrix.vllm_version") -> str:
    """A vLLM version as users write it -> the release it is priced as: "MAJOR.MINOR" when only those were written
    ("0.20": the 0.20.0 release, as before patches were kept), else "MAJOR.MINOR.PATCH" ("v0.20.2" -> "0.20.2").

    A pre-release or development build of X.Y.Z ("0.20.1rc1", "0.20.1.dev1+g39acbf39c", "0.13.0+faa43dbf.nv26.01")
    is priced as X.Y.Z and written so (``profiles.parse_version`` says why); a post-release's fourth number
    ("0.10.1.1") is dropped.  Each release maps to the profile of its range (``reportgen.estimate.profiles.profile_for``,
    ranges may start at a patch: 0.11.1, 0.20.1) and every per-release rule sees the patch; a version newer than the
    newest release read uses the newest profile, with a note; versions before the V1 engine's profiler (0.10) are
    refused.
    """
    import re

    m = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.(\d+))?(?:[.+-]?[A-Za-z0-9.+]*)?", str(value).strip())
    if not m or (int(m[1]), int(m[2])) < (0, 10):
        raise JobError(f"{field}: {value!r} is not allowed; allowed: a vLLM version from 0.10 on, "
                       f"e.g. 0.19.0 or v0.27.1 (profiles start at {', '.join(VLLM_VERSIONS)}; before 0.20 "
                       "CUDA graphs sit outside the KV budget; from 0.20 their estimate is subtracted)")
    return f"{int(m[1])}.{int(m[2])}" + (f".{int(m[3])}" if m[3] is not None else "")


# the first vLLM release with the extensible KV cache (on by default there): vllm 0.34.0 sdist config/cache.py:395
EXTENSIBLE_KV_CACHE_FROM = (0, 34)


def _major_minor(version: str) -> tuple[int, int]:
    major, minor = str(version).split(".")[:2]
    return int(major), int(minor)


def extensible_kv_cache_problem(m: "Matrix") -> str:
    """Why vLLM refuses ``--enable-extensible-kv-cache`` for this job ('' when it does not): the flag does not exist
    before 0.34; vLLM 0.34 raises when it is requested with ``kv_cache_memory_bytes`` ("it sizes the KV cache from
    measured memory, which kv_cache_memory_bytes overrides": config/vllm.py:3203-3207, raised for an explicit request at :3262-3263
    error after it)."""
    if _major_minor(m.vllm_version) < EXTENSIBLE_KV_CACHE_FROM:
        return (f"vLLM {m.vllm_version} has no extensible KV cache (the flag arrives in 0.34); "
                "remove it or set vllm_version = \"0.34\"")
    if m.kv_cache_memory_bytes is not None:
        return ("vLLM refuses it with kv_cache_memory_bytes ('it sizes the KV cache from measured memory, which "
                "kv_cache_memory_bytes overrides'); give one of them")
    return ""


def estimate_cudagraphs_problem(version: str) -> str:
    """Why ``VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS`` means nothing for this release ('' when it does): vLLM reads
    it from 0.18.0 (profiles.ESTIMATE_CUDAGRAPHS_FROM); 0.17 has no graph estimate to turn on or off."""
    from reportgen.estimate.profiles import ESTIMATE_CUDAGRAPHS_FROM, parse_version
    v = parse_version(version)
    if v is not None and v < ESTIMATE_CUDAGRAPHS_FROM:
        return (f"vLLM {version} has no CUDA-graph memory estimate (VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS arrives "
                "in 0.18.0): its graphs are always captured outside the budget; remove it")
    return ""


# compilation_config.cudagraph_mode values priced: the default FULL_AND_PIECEWISE (the mode every fitted graph row ran,
# vLLM 0.11.0+) and NONE (no graphs); the others capture other graph sets whose memory no log row shows
CUDAGRAPH_MODES = ("FULL_AND_PIECEWISE", "NONE")
# the capture-size rule these settings are read with: vLLM 0.11.1+ (estimate/capture_sizes.py "max_num_seqs" rule)
CAPTURE_SETTINGS_FROM = (0, 11, 1)


def capture_settings_problem(m: "Matrix") -> str:
    """Why the job's CUDA-graph capture settings cannot be priced ('' when they can): before 0.11.1 vLLM built another
    list (0.10's ``cuda_graph_sizes``, 0.11.0's step-8 list: not read for user values); a mode other than
    ``CUDAGRAPH_MODES``; a maximum and a list that disagree (vLLM raises "customized max_cudagraph_capture_size ...
    should be consistent with the max value of cudagraph_capture_sizes": 0.34.0 sdist config/vllm.py:2511-2521)."""
    given = [k for k in ("max_cudagraph_capture_size", "cudagraph_capture_sizes", "cudagraph_mode")
             if getattr(m, k) is not None]
    if not given:
        return ""
    from reportgen.estimate.profiles import parse_version
    v = parse_version(m.vllm_version)
    if v is not None and v < CAPTURE_SETTINGS_FROM:
        return (f"{given[0]}: vLLM {m.vllm_version} builds its capture list by another rule (modelled from 0.11.1 on); "
                "remove it")
    if m.cudagraph_mode is not None and m.cudagraph_mode.upper() not in CUDAGRAPH_MODES:
        return (f"cudagraph_mode {m.cudagraph_mode!r}: CUDA-graph memory is priced for "
                f"{' and '.join(CUDAGRAPH_MODES)} only (the graph terms were fitted on FULL_AND_PIECEWISE starts; no "
                "log shows another mode's memory)")
    sizes = m.cudagraph_capture_sizes
    if sizes is not None and m.max_cudagraph_capture_size is not None and max(sizes) != m.max_cudagraph_capture_size:
        return (f"max_cudagraph_capture_size {m.max_cudagraph_capture_size} and max(cudagraph_capture_sizes) "
                f"{max(sizes)} differ: vLLM refuses to start ('should be consistent with the max value of "
                "cudagraph_capture_sizes')")
    return ""


def extensible_kv_cache(m: "Matrix") -> bool:
    """Whether vLLM sizes this job's KV cache with the extensible KV cache: 0.34+ unless turned off or
    ``kv_cache_memory_bytes`` is set (vllm 0.34.0 sdist config/vllm.py:3180-3204, ``_resolve_extensible_kv_cache``;
    on CUDA / ROCm, which are the GPUs the catalog prices)."""
    if _major_minor(m.vllm_version) < EXTENSIBLE_KV_CACHE_FROM or m.kv_cache_memory_bytes is not None:
        return False
    return m.enable_extensible_kv_cache is not False


# vLLM's default gpu_memory_utilization without the extensible KV cache: 0.9 up to 0.19.1 (vllm 0.10.0 sdist
# config.py:1626, 0.11.0 .. 0.19.1 config/cache.py ``gpu_memory_utilization: float = 0.9`` / ``Field(default=0.9)``,
# which EngineArgs copies, engine/arg_utils.py:468 in 0.19.1), 0.92 from 0.20.0 (config/cache.py:66; :215 in 0.33.0)
UTILIZATION_092_FROM = (0, 20)


def default_utilization(m: "Matrix") -> float:
    """vLLM's ``gpu_memory_utilization`` when the job leaves it unset: 1.0 with the extensible KV cache (vllm
    0.34.0 sdist config/cache.py:494-500 ``resolved_gpu_memory_utilization``), else 0.92 from 0.20.0 and 0.9 before
    (``UTILIZATION_092_FROM``)."""
    if extensible_kv_cache(m):
        return 1.0
    return utilization_without_extensible_cache(m)


def utilization_without_extensible_cache(m: "Matrix") -> float:
    """vLLM's unset ``gpu_memory_utilization`` where the extensible KV cache is off (by the job, by the release, or on
    a platform vLLM keeps it from: a Gaudi, matrix.cells): 0.92 from 0.20.0, 0.9 before (``UTILIZATION_092_FROM``)."""
    return 0.92 if _major_minor(m.vllm_version) >= UTILIZATION_092_FROM else 0.9


def resolved_utilizations(m: "Matrix") -> list[float]:
    """The job's ``gpu_memory_utilization`` axis, or vLLM's default for its version (``default_utilization``)."""
    if m.gpu_memory_utilization:
        return list(m.gpu_memory_utilization)
    return [default_utilization(m)]


@dataclass(frozen=True)
class ModelRef:
    id: str
    revision: str | None = None
    # a per-model KV dtype axis (a ``models`` table entry's ``kv_cache_dtype``): replaces the matrix's
    # ``kv_cache_dtype`` for this model only (DeepSeek-V4: vLLM asserts an fp8 cache, so ``auto`` cannot start)
    kv_cache_dtype: tuple[str, ...] | None = None

    def __str__(self) -> str:
        return self.id if not self.revision else f"{self.id}@{self.revision}"


@dataclass
class Matrix:
    """The axes of the cross product and the vLLM engine settings.

    ``max_num_batched_tokens`` / ``max_num_seqs`` None means vLLM's default for the
    GPU (engine/arg_utils.py: >=70 GiB non-A100 GPUs 8192 / 1024 for the API
    server, smaller GPUs 2048 / 256; from vLLM 0.28 >= 160 GiB GPUs 16384 / 1024:
    overheads.default_scheduler_limits).
    """

    tp: list[int] = field(default_factory=lambda: [1])
    pp: list[int] = field(default_factory=lambda: [1])
    dp: list[int] = field(default_factory=lambda: [1])
    ep: list[bool] = field(default_factory=lambda: [False])
    weights_as: list[str] = field(default_factory=lambda: ["checkpoint"])
    kv_cache_dtype: list[str] = field(default_factory=lambda: ["auto"])
    max_model_len: list[int] = field(default_factory=lambda: [8192])
    concurrency: list[int] = field(default_factory=lambda: [1])
    # None: vLLM's default for the version -- 0.9 before 0.20, 0.92 from 0.20, or 1.0 where the extensible KV
    # cache is on (0.34+; ``default_utilization``)
    gpu_memory_utilization: list[float] | None = None
    max_num_batched_tokens: int | None = None
    max_num_seqs: int | None = None
    block_size: int | None = None               # None: vLLM's default for the version (16; 64 from 0.34)
    vllm_version: str = DEFAULT_VLLM_VERSION
    gpus_per_node: int | None = None          # None: the SKU's own
    max_nodes: int = 1
    allow_cross_node_tp: bool = False
    allow_long_max_model_len: bool | None = None  # None: follow VLLM_ALLOW_LONG_MAX_MODEL_LEN
    # vLLM engine flags that are one value per deployment (not axes); see reportgen/vllm_args.py
    dtype: str = "auto"                         # --dtype: model / activation dtype
    quantization: str | None = None             # --quantization: online method (fp8) or the checkpoint's
    enforce_eager: bool = False                 # --enforce-eager: no CUDA graphs
    # --[no-]enable-prefix-caching; None: the version's default. For hybrid (state-layer) models it picks
    # vLLM's mamba_cache_mode (estimate/hybrid.py): on = align, 2 state blocks per request
    enable_prefix_caching: bool | None = None
    kv_cache_memory_bytes: int | None = None    # --kv-cache-memory-bytes: fixed KV bytes per GPU
    # --[no-]enable-extensible-kv-cache (vLLM 0.34+); None: vLLM's default -- on from 0.34 unless
    # kv_cache_memory_bytes is set (``extensible_kv_cache``)
    enable_extensible_kv_cache: bool | None = None
    # vLLM env VLLM_USE_FLASHINFER_SAMPLER; None: unset.  0.10-0.16 sample with FlashInfer whenever it is
    # installed and the variable is unset ("in V1, None means True"); true = that, false = the sort-based
    # PyTorch sampler the 0.10-0.16 profiles assume (profiles.VllmProfile.sampler_extra_bytes)
    flashinfer_sampler: bool | None = None
    # vLLM env VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS (0.18+); None: unset -- the release's default, off in 0.18 /
    # 0.19 and on from 0.20 (profiles.py).  On: the CUDA-graph estimate is taken from the KV budget; off: the graphs
    # are captured after the cache is sized, outside the budget (``estimate_cudagraphs_used``)
    memory_profiler_estimate_cudagraphs: bool | None = None
    # vLLM --max-cudagraph-capture-size / --cudagraph-capture-sizes (also compilation_config keys) and
    # compilation_config cudagraph_mode (FULL_AND_PIECEWISE, vLLM's default from 0.11, or NONE: no graphs); None:
    # vLLM's default.  How many graphs they capture: estimate/capture_sizes.py; from 0.11.1 only
    # (``capture_settings_problem``)
    max_cudagraph_capture_size: int | None = None
    cudagraph_capture_sizes: list[int] | None = None
    cudagraph_mode: str | None = None
    # PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True in vLLM's environment: PyTorch's caching allocator then
    # splits every block, so no weight parameter keeps a 2 MiB-rounded block ("Model loading took" is the
    # tensors; estimate/weights.allocator_unsplit_bytes).  vLLM does not set it itself (0.10 - 0.34)
    expandable_segments: bool = False
    # vLLM --disable-custom-all-reduce: no custom all-reduce buffers in the TP group's start-up memory
    # (estimate/overheads.py CUSTOM_AR_GIB: outside the budget; the in-budget non-torch term has none)
    disable_custom_all_reduce: bool = False
    # vLLM --moe-backend (vllm_args.MOE_BACKENDS): "cutlass" prices the CUTLASS NVFP4 MoE step on NVFP4 experts
    # (estimate/tables.cutlass_nvfp4_moe_coeffs); other values price the Triton-fitted terms
    moe_backend: str = "auto"
    # vLLM --attention-config '{"indexer_kv_dtype": ...}': MiniMax-M3's lightning-indexer cache dtype (bf16, vLLM's
    # default, or fp8; estimate/kvcache.py INDEXER_KV_BYTES); no effect on other models
    indexer_kv_dtype: str = "bf16"
    # legacy keyword: Matrix(weight_dtype=[...]) from callers written before the weights_as split
    weight_dtype: InitVar[list[str] | None] = None

    def __post_init__(self, weight_dtype):
        if weight_dtype is not None and not isinstance(weight_dtype, property):
            self.weights_as = list(weight_dtype)
    # vLLM --limit-mm-per-prompt ({"image": 0} = text only: no tower, no encoder profile; estimate/encoder.py)
    limit_mm_per_prompt: dict[str, int] | None = None
    # vLLM --speculative-config: a table or a JSON string ({"method": "mtp", "num_speculative_tokens": 1};
    # estimate/specdecode.py).  A draft_model's config is resolved like a model (``draft_spec`` attribute)
    speculative_config: dict | None = None

    @property
    def estimate_cudagraphs_used(self) -> bool | None:
        """``memory_profiler_estimate_cudagraphs`` where it decides the budget; None where it does not: unset, or a
        job whose cache the extensible KV cache sizes -- it measures the captured graphs after warm-up whatever the
        variable says ("The extensible KV cache measures the capture footprint after warmup, so the disabled estimate
        loses nothing there": vllm 0.34.0 sdist v1/worker/gpu_worker.py:820-822)."""
        if self.memory_profiler_estimate_cudagraphs is None or extensible_kv_cache(self):
            return None
        return self.memory_profiler_estimate_cudagraphs

    def n_layouts(self) -> int:
        return len(self.tp) * len(self.pp) * len(self.dp) * len(self.ep)

    def n_cells_per_model_gpu(self, kv_cache_dtype=None) -> int:
        """Cells of one model on one GPU; ``kv_cache_dtype``: the model's own KV axis (``ModelRef``), if any."""
        return (self.n_layouts() * len(self.weights_as) * len(kv_cache_dtype or self.kv_cache_dtype)
                * len(self.max_model_len) * len(self.concurrency) * len(self.gpu_memory_utilization or [None]))


# read access under the pre-split name (Matrix.weight_dtype -> weights_as) for older callers
Matrix.weight_dtype = property(lambda self: self.weights_as,
                               doc="Legacy name of ``weights_as`` (the what-if weight axis).")


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
        if d["matrix"].get("moe_backend") == "auto":     # vLLM's default: hashes of jobs written before the key
            d["matrix"].pop("moe_backend")
        for key in ("memory_profiler_estimate_cudagraphs", "max_cudagraph_capture_size", "cudagraph_capture_sizes",
                    "cudagraph_mode"):           # keys added later: unset hashes as before they existed
            if d["matrix"].get(key) is None:
                d["matrix"].pop(key, None)
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
MATRIX_KEYS = tuple(f.name for f in fields(Matrix))
# vLLM EngineArgs names (snake_case) and the pre-split name, accepted as spellings of our keys
MATRIX_ALIASES = {"tensor_parallel_size": "tp", "pipeline_parallel_size": "pp", "data_parallel_size": "dp",
                  "enable_expert_parallel": "ep", "weight_dtype": "weights_as",
                  "kv_cache_memory": "kv_cache_memory_bytes"}


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


_HUMAN_INTS = ("max_model_len", "max_num_batched_tokens")


def _human_ints(value, fp: str):
    """vLLM's human-readable integers ("32k" = 32,000, "32K" = 32,768) where vLLM takes them."""
    from reportgen.vllm_args import VllmArgsError, human_readable_int

    def one(v):
        if not isinstance(v, str):
            return v
        try:
            return human_readable_int(v)
        except VllmArgsError as e:
            raise JobError(f"{fp}: {e}") from None
    return [one(v) for v in value] if isinstance(value, list) else one(value)


def _engine_flag(m: Matrix, key: str, value, fp: str) -> None:
    """The one-value vLLM engine flags (dtype, quantization, enforce_eager, ...), with vLLM's value rules."""
    from reportgen.vllm_args import VllmArgsError, human_readable_int, model_dtype, quantization_method

    try:
        if key == "dtype":
            if not isinstance(value, str):
                raise VllmArgsError(f"expected a string, got {value!r}")
            m.dtype = model_dtype(value)
        elif key == "quantization":
            if value is not None and not isinstance(value, str):
                raise VllmArgsError(f"expected a vLLM quantization method name, got {value!r}")
            m.quantization = quantization_method(value)
        elif key in ("enforce_eager", "enable_prefix_caching", "flashinfer_sampler", "disable_custom_all_reduce",
                     "expandable_segments", "memory_profiler_estimate_cudagraphs"):
            if not isinstance(value, bool):
                raise VllmArgsError(f"expected true or false, got {value!r}")
            setattr(m, key, value)
        elif key == "speculative_config":
            from reportgen.estimate.specdecode import SpecConfigError, parse_speculative_config
            try:
                sd = parse_speculative_config(value)
            except SpecConfigError as e:
                raise VllmArgsError(str(e)) from None
            m.speculative_config = dict(sd.raw) if sd is not None else None
        elif key == "moe_backend":
            from reportgen.vllm_args import moe_backend
            if not isinstance(value, str):
                raise VllmArgsError(f"expected a vLLM MoE backend name, got {value!r}")
            m.moe_backend = moe_backend(value)
        elif key == "indexer_kv_dtype":
            from reportgen.estimate.kvcache import INDEXER_KV_BYTES
            if not isinstance(value, str) or value.strip().lower() not in INDEXER_KV_BYTES:
                raise VllmArgsError(f"{value!r} is not allowed; allowed: {', '.join(INDEXER_KV_BYTES)} (vLLM's "
                                    "MiniMax-M3 indexer cache raises for any other --attention-config indexer_kv_dtype)")
            m.indexer_kv_dtype = value.strip().lower()
        elif key == "kv_cache_memory_bytes":
            n = human_readable_int(value)
            if not 1 <= n <= 1 << 50:
                raise VllmArgsError(f"{value!r} is out of range; allowed: bytes per GPU, e.g. 8589934592 or \"8G\"")
            m.kv_cache_memory_bytes = n
    except VllmArgsError as e:
        raise JobError(f"{fp}: {e}") from None


def parse_matrix(raw: dict, field_path: str = "matrix") -> Matrix:
    """Validate ``[matrix]``.  Keys are ours or vLLM's EngineArgs names (``MATRIX_ALIASES``);
    ``weight_dtype`` is the pre-split name of ``weights_as`` (same values, same meaning)."""
    if not isinstance(raw, dict):
        raise JobError(f"{field_path}: must be a table ([matrix])")
    m = Matrix()
    seen: dict[str, str] = {}
    for given, value in raw.items():
        key = MATRIX_ALIASES.get(given, given)
        fp = f"{field_path}.{given}"
        if key not in MATRIX_KEYS:
            raise _unknown(field_path, given, MATRIX_KEYS + tuple(MATRIX_ALIASES))
        if key in seen:
            raise JobError(f"{fp}: the same setting as {field_path}.{seen[key]}; give one of them")
        seen[key] = given
        if key in _HUMAN_INTS:
            value = _human_ints(value, fp)
        if key in _LIST_INT_AXES:
            setattr(m, key, _int_list(value, fp, *_LIST_INT_AXES[key]))
        elif key == "ep":
            vals = _as_list(value, fp)
            if not all(isinstance(v, bool) for v in vals):
                raise JobError(f"{fp}: expected true/false values, got {value!r}")
            m.ep = sorted(set(vals))
        elif key == "weights_as":
            vals = ["checkpoint" if isinstance(v, str) and v.strip().lower() == "auto" else v
                    for v in _as_list(value, fp)]
            m.weights_as = _choice_list(vals, fp, WEIGHTS_AS, aliases=True)
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
        elif key == "max_cudagraph_capture_size":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1_000_000:
                raise JobError(f"{fp}: {value!r} is not allowed; allowed: a whole number of at least 1")
            m.max_cudagraph_capture_size = value
        elif key == "cudagraph_capture_sizes":
            m.cudagraph_capture_sizes = _int_list(value, fp, 1, 1_000_000)     # sorted, de-duplicated
        elif key == "cudagraph_mode":
            if not isinstance(value, str):
                raise JobError(f"{fp}: expected a vLLM CUDAGraphMode name such as \"FULL_AND_PIECEWISE\", "
                               f"got {value!r}")
            m.cudagraph_mode = value.strip().upper()
        elif key in ("allow_cross_node_tp", "allow_long_max_model_len", "enable_prefix_caching",
                     "enable_extensible_kv_cache"):
            if not isinstance(value, bool):
                raise JobError(f"{fp}: expected true or false, got {value!r}")
            setattr(m, key, value)
        elif key == "limit_mm_per_prompt":
            from reportgen.estimate.encoder import parse_limits
            try:
                m.limit_mm_per_prompt = parse_limits(value)
            except ValueError as e:
                raise JobError(f"{field_path}.{e}") from None
        else:
            _engine_flag(m, key, value, fp)
    if m.quantization and any(w != "checkpoint" for w in m.weights_as):
        raise JobError(f"{field_path}.quantization: {m.quantization!r} quantizes the checkpoint as vLLM loads it, "
                       "while weights_as re-quantizes it as a what-if; use one of them "
                       f"(weights_as = {m.weights_as})")
    if m.enable_extensible_kv_cache:
        problem = extensible_kv_cache_problem(m)
        if problem:
            raise JobError(f"{field_path}.enable_extensible_kv_cache: {problem}")
    problem = capture_settings_problem(m)
    if problem:
        raise JobError(f"{field_path}.{problem}")
    if m.memory_profiler_estimate_cudagraphs is not None:
        problem = estimate_cudagraphs_problem(m.vllm_version)
        if problem:
            raise JobError(f"{field_path}.memory_profiler_estimate_cudagraphs: {problem}")
    return m


# what a model line may look like: a hub id or path, optional @revision (no '=', quotes, spaces...)
_MODEL_LINE = re.compile(r"[\w./~+:-]{1,4096}(@[\w./+-]{1,255})?")
_SHOWABLE = re.compile(r"[\w./~@+:-]{1,200}")


def _show(text: str) -> str:
    """``text`` quoted for a message only when it looks like a model id: a line of some other
    file (``/proc/self/environ``, an .env file) must never put its content into any output."""
    return repr(text) if _SHOWABLE.fullmatch(text) and "=" not in text else "(content not shown)"


def parse_model_line(line: str, where: str, strict: bool = False) -> ModelRef | None:
    """One `id[@revision]` per line; `#` starts a comment; blank lines skipped.

    ``strict`` (lines of a models_file): the line must look like an id or a path, because a
    wrongly named file (an .env, /proc/...) would otherwise turn its lines into "model ids" that
    errors.csv and the report repeat.  Ids typed in the job's ``models`` list are the user's own
    words: anything without whitespace is kept and judged by the sources (an invalid_id row)."""
    text = line.split("#", 1)[0].strip()
    if not text:
        return None
    mid, _, rev = text.partition("@")
    mid, rev = mid.strip(), rev.strip() or None
    if not mid or any(c.isspace() for c in mid) or (strict and not _MODEL_LINE.fullmatch(text)):
        raise JobError(f"{where}: {_show(text)} is not a model id (expected org/name[@revision] or a path)")
    return ModelRef(mid, rev)


MODEL_TABLE_KEYS = ("id", "revision", "kv_cache_dtype")


def parse_model_table(raw: dict, where: str) -> ModelRef:
    """A ``models`` entry written as a table: ``{id = "org/name", revision = "...", kv_cache_dtype = ["fp8"]}``.

    ``kv_cache_dtype`` replaces the matrix's KV dtype axis for this model only (same values as
    ``matrix.kv_cache_dtype``): a model vLLM serves only with some KV dtypes (DeepSeek-V4 asserts fp8)
    gets real figures in a job whose other models keep ``auto``."""
    for key in raw:
        if key not in MODEL_TABLE_KEYS:
            raise _unknown(where, key, MODEL_TABLE_KEYS)
    mid = raw.get("id")
    if not isinstance(mid, str) or not mid.strip() or any(c.isspace() for c in mid.strip()) or "@" in mid:
        raise JobError(f"{where}.id: expected a model id (org/name or a path; the revision goes in `revision`)")
    rev = raw.get("revision")
    if rev is not None and (not isinstance(rev, str) or not rev.strip() or any(c.isspace() for c in rev.strip())):
        raise JobError(f"{where}.revision: expected a branch, tag or commit (a string without spaces)")
    kv = None
    if "kv_cache_dtype" in raw:
        kv = tuple(_choice_list(raw["kv_cache_dtype"], f"{where}.kv_cache_dtype", KV_DTYPES, aliases=True))
    return ModelRef(mid.strip(), rev.strip() if rev else None, kv)


def dedupe_models(models: list[ModelRef]) -> list[ModelRef]:
    """Each model once, first spelling (and place) kept.  Hub ids are case-insensitive (the Hub redirects
    ``qwen/qwen3-8b`` to ``Qwen/Qwen3-8B``), so they are compared case-folded; paths are not.

    A table entry with its own ``kv_cache_dtype`` wins over a plain mention of the same model
    (e.g. a ``models_file`` line), in the plain one's place; two different axes for one model are an error."""
    from reportgen.sources.ids import looks_like_path

    seen: dict[tuple, ModelRef] = {}
    for m in models:
        key = (m.id if looks_like_path(m.id) else m.id.casefold(), m.revision)
        old = seen.setdefault(key, m)
        if old is m or m.kv_cache_dtype is None or old.kv_cache_dtype == m.kv_cache_dtype:
            continue
        if old.kv_cache_dtype is not None:
            raise JobError(f"models: {m} is listed twice with different kv_cache_dtype "
                           f"({list(old.kv_cache_dtype)} and {list(m.kv_cache_dtype)}); give one")
        seen[key] = ModelRef(old.id, old.revision, m.kv_cache_dtype)
    return list(seen.values())


def _models_file_path(value: str, job_dir: Path) -> Path:
    """models_file: a relative name beside the job file (subfolders allowed), then in model_lists/.

    It must stay inside that folder once resolved (no '..', no absolute path, no symlink out):
    a job must not make reportgen read arbitrary files such as /proc/self/environ."""
    from reportgen.paths import model_lists_dir

    p = Path(value)
    if not value.strip() or "\x00" in value or p.is_absolute() or ".." in p.parts:
        raise JobError(f"models_file: {_show(value)} must be a file name beside the job file or in model_lists/ "
                       "(no absolute path, no '..', no NUL)")
    for root in (job_dir, model_lists_dir()):
        try:
            root = root.resolve()
            cand = (root / p).resolve()
        except (OSError, RuntimeError):
            continue
        if cand.is_relative_to(root) and cand.exists():
            return cand
    raise JobError(f"models_file: {_show(value)} not found (looked beside the job file and in model_lists/)")


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
        if not isinstance(vals, list) or not all(isinstance(v, (str, dict)) for v in vals):
            raise JobError("models: expected a list of model ids (strings) or tables, e.g. [\"meta-llama/Llama-3.1-8B\", "
                           "{id = \"deepseek-ai/DeepSeek-V4-Flash\", kv_cache_dtype = [\"fp8\"]}]")
        for i, v in enumerate(vals):
            ref = (parse_model_table(v, f"models[{i}]") if isinstance(v, dict)
                   else parse_model_line(v, f"models[{i}]", strict=False))
            if ref:
                models.append(ref)
    if "models_file" in raw:
        if not isinstance(raw["models_file"], str):
            raise JobError("models_file: expected a file name under model_lists/")
        from reportgen.safe_read import LIST_MAX_BYTES, read_text_file

        path = _models_file_path(raw["models_file"], job_dir)
        try:
            text = read_text_file(path, "models_file", LIST_MAX_BYTES)
        except ValueError as e:
            raise JobError(str(e)) from None
        for n, line in enumerate(text.splitlines(), start=1):
            ref = parse_model_line(line, f"models_file {path.name}:{n}", strict=True)
            if ref:
                models.append(ref)
    models = dedupe_models(models)
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
    from reportgen.safe_read import JOB_MAX_BYTES, read_text_file

    p = Path(path)
    try:
        exists = p.exists()
    except OSError as e:
        raise JobError(f"job file: cannot use the path ({e.strerror or type(e).__name__})") from None
    if not exists:
        raise JobError(f"job file {str(p)[:200]!r} not found")
    try:
        text = read_text_file(p, "job file", JOB_MAX_BYTES)   # regular, <= 1 MiB, UTF-8 (BOM accepted)
    except ValueError as e:
        raise JobError(str(e)) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise JobError(f"{p.name}: not valid TOML: {e}") from None
    except RecursionError:
        raise JobError(f"{p.name}: not valid TOML: nested too deeply") from None


def load_job(path: str | Path, overrides: Callable[[dict], None] | None = None) -> Job:
    """Read, optionally adjust the raw table (CLI --set), then validate completely."""
    raw = read_job_toml(path)
    if overrides is not None:
        overrides(raw)
    p = Path(path)
    return parse_job(raw, job_dir=p.parent, source_path=str(p))


def check_size(job: Job, n_gpus: int, limit: int = MAX_CELLS) -> int:
    """Refuse a matrix too large to be useful, saying the size it would have."""
    per_model = [job.matrix.n_cells_per_model_gpu(m.kv_cache_dtype) for m in job.models]
    cells = sum(per_model) * n_gpus
    if cells > limit:
        settings = (f"{per_model[0]:,}" if len(set(per_model)) == 1
                    else f"{min(per_model):,} to {max(per_model):,}")
        raise JobError(
            f"matrix: {cells:,} cells ({len(job.models)} models x {n_gpus} GPUs x "
            f"{settings} settings) exceeds the limit of {limit:,}; "
            "narrow an axis (tp, pp, dp, ep, weights_as, kv_cache_dtype, max_model_len, concurrency)")
    return cells
