"""KV-cache element sizes for vLLM's ``--kv-cache-dtype`` values.

Why here: the KV dtype is a quantization choice like the weight scheme, and
an unknown value must fail loudly (a silent 2-byte default halves or doubles
capacity).  vLLM values: ``auto`` (the model's serving dtype), ``bfloat16`` /
``float16``, the 1-byte ``fp8`` (= ``fp8_e4m3`` on CUDA), ``fp8_e4m3``,
``fp8_e5m2``, ``fp8_inc``, and the packed MLA format ``fp8_ds_mla``.

``auto`` follows the checkpoint first: since vLLM PR #30785 (Dec 2025, so
the 0.19 reference logs), ``auto`` on a ModelOpt checkpoint whose
``kv_cache_quant_algo`` is FP8 means an fp8_e4m3 cache
(``get_kv_cache_quant_algo_string`` in vllm/utils/torch_utils.py); for every
other checkpoint it is the model dtype.  A compressed-tensors
``kv_cache_scheme`` only supplies scales -- vLLM does not switch the cache
dtype for it -- so it shows up as ``Scheme.kv_cache_dtype_default`` (what
the checkpoint was calibrated for) but not here.

``fp8_ds_mla`` (DeepSeek-V3.2 sparse MLA) is not "N bytes per element": each
token of each MLA layer takes a fixed 656-byte entry (512 fp8 NoPE values,
4 float32 tile scales, 64 bf16 RoPE values).  How the estimator must use it:
ask ``kv_cache_token_bytes(kv_dtype)`` first -- when it returns a number, that
is the bytes per token per MLA layer, replacing ``head_size_k * element
bytes``.  For callers that only multiply ``LayerKV.bytes_per_token`` by an
element size, ``kv_cache_bytes`` returns ``656 / head_size_k`` (576 for
DeepSeek), which gives the same 656 B per token per layer.
"""

from __future__ import annotations

from reportgen.arch.spec import AttentionKind, ModelSpec

from .method import method_of
from .scheme import UnsupportedQuantization, dtype_bytes

KV_ELEMENT_BYTES = {
    "bfloat16": 2, "bf16": 2, "float16": 2, "fp16": 2, "half": 2,
    "fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1, "fp8_inc": 1,
}
KV_TOKEN_BYTES_PER_LAYER = {"fp8_ds_mla": 656}
KV_DTYPES = ("auto", *KV_ELEMENT_BYTES, *KV_TOKEN_BYTES_PER_LAYER)


def checkpoint_kv_cache_dtype(qc: dict | None) -> str | None:
    """What ``--kv-cache-dtype auto`` resolves to for this quantization config (None = the model dtype)."""
    if not qc or method_of(qc) != "modelopt":
        return None
    inner = qc["quantization"] if isinstance(qc.get("quantization"), dict) else qc
    algo = (inner.get("kv_cache_scheme") or qc.get("kv_cache_scheme")
            or inner.get("kv_cache_quant_algo") or qc.get("kv_cache_quant_algo"))
    if isinstance(algo, dict):
        if algo.get("dynamic") is False and algo.get("num_bits") == 8 and algo.get("type") == "float":
            algo = "fp8"
        elif algo.get("num_bits") == 4 and algo.get("type") == "float":
            raise UnsupportedQuantization("ModelOpt NVFP4 KV cache (kv_cache_quant_algo nvfp4) is not modelled")
        else:
            return None  # vLLM warns and falls back to auto
    if isinstance(algo, str):
        if algo.lower() == "fp8":
            return "fp8_e4m3"
        if algo.lower() == "nvfp4":
            raise UnsupportedQuantization("ModelOpt NVFP4 KV cache (kv_cache_quant_algo nvfp4) is not modelled")
    return None


def _key(kv_dtype: str) -> str:
    key = str(kv_dtype).lower()
    if key != "auto" and key not in KV_ELEMENT_BYTES and key not in KV_TOKEN_BYTES_PER_LAYER:
        raise UnsupportedQuantization(f"unknown kv_cache_dtype {kv_dtype!r}; allowed: {', '.join(KV_DTYPES)}")
    return key


_CANONICAL = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}


def kv_cache_dtype_used(kv_dtype: str, model_dtype: str, spec: ModelSpec | None = None) -> str:
    """The KV-cache dtype vLLM allocates for ``--kv-cache-dtype kv_dtype`` (what outputs report).

    ``auto`` resolves as ``kv_cache_bytes`` does: the checkpoint's KV dtype (a ModelOpt FP8 KV cache:
    ``fp8_e4m3``), else the serving dtype ``model_dtype``.  On a DSA model (sparse MLA layers) an fp8
    cache is vLLM's packed ``fp8_ds_mla`` (FlashMLASparseBackend: ``"fp8"`` is its alias).  Other
    explicit values come back as given (16-bit aliases spelled out).
    """
    key = _key(_fixed(kv_dtype, spec))
    if key == "auto":
        key = (checkpoint_kv_cache_dtype(spec.quantization_config) if spec is not None else None) or model_dtype
    key = _CANONICAL.get(key.lower(), key.lower())
    if (spec is not None and KV_ELEMENT_BYTES.get(key) == 1
            and any(getattr(l, "sparse", False) for l in spec.layers_kv)):
        return "fp8_ds_mla"
    return key


def _fixed(kv_dtype: str, spec: ModelSpec | None) -> str:
    """``spec.kv_cache_dtype_fixed`` when the model's layers never see ``--kv-cache-dtype``, else ``kv_dtype``."""
    return getattr(spec, "kv_cache_dtype_fixed", None) or kv_dtype


def kv_cache_token_bytes(kv_dtype: str) -> int | None:
    """Bytes per token per MLA layer for packed formats (``fp8_ds_mla`` = 656), else None."""
    return KV_TOKEN_BYTES_PER_LAYER.get(_key(kv_dtype))


def kv_cache_bytes(kv_dtype: str, model_dtype: str, spec: ModelSpec | None = None) -> float:
    """Bytes per KV element; ``auto`` = the checkpoint's KV dtype (ModelOpt), else ``model_dtype``."""
    key = _key(_fixed(kv_dtype, spec))
    if key == "auto":
        resolved = checkpoint_kv_cache_dtype(spec.quantization_config) if spec is not None else None
        if resolved is None:
            return dtype_bytes(model_dtype)
        key = resolved
    if key in KV_ELEMENT_BYTES:
        return KV_ELEMENT_BYTES[key]
    if spec is None or not spec.is_mla:
        raise UnsupportedQuantization(f"kv_cache_dtype {kv_dtype!r} applies to MLA models only")
    heads = {l.head_size_k for l in spec.layers_kv if l.kind is AttentionKind.MLA}
    head = heads.pop() if len(heads) == 1 else 576
    return KV_TOKEN_BYTES_PER_LAYER[key] / head
