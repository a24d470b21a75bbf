"""Weight storage schemes and KV-cache dtypes: exact bytes, scales and zero points included.

Interface used by the estimator (stable):

    scheme = whatif_scheme(name, model_dtype)  # bf16/fp16/fp32/fp8/int8/int4; "auto"/"checkpoint" = model dtype
    scheme = checkpoint_scheme(spec, mxfp4_backend="triton")  # serve as shipped: reads spec.quantization_config;
                                               # mxfp4_backend: vLLM's MXFP4 MoE backend (triton = H100/H200
                                               # under vLLM >= 0.19; marlin = A100; see MXFP4_MOE_PADDING)
    report = attach_checkpoint_headers(spec, header)  # --weights checkpoint: safetensors header bytes; after
                                               # it checkpoint_scheme(spec) is a HeaderScheme ("<name>+headers")
    scheme.name                                # "bf16", "fp8-block128", "awq-int4-g128", "mxfp4", "nvfp4", ...
    scheme.tensor_bytes(tensor) -> int         # whole unsharded tensor, all `count` copies
    scheme.breakdown(tensor) -> dict           # the same bytes per stored part (weight, scale, zero_point, g_idx, ...)
    scheme.describe() -> str                   # one line for the report
    scheme.expert_rank_bytes(t, moe_tp, experts_on_rank)  # routed experts on one rank (MXFP4 backend layout)
    scheme.kv_cache_dtype_default              # "fp8" when the checkpoint was calibrated for an fp8 KV cache
    kv_cache_bytes(kv_dtype, model_dtype, spec) -> float   # bytes per KV element (auto honours ModelOpt fp8 KV)
    kv_cache_dtype_used(kv_dtype, model_dtype, spec) -> str  # what "auto" (or fp8 on DSA) really allocates
    kv_cache_token_bytes(kv_dtype) -> int | None           # per-token-per-layer override (fp8_ds_mla = 656)

Unknown methods / dtypes raise UnsupportedQuantization naming them.

Layout of the package (one concern each): ``layouts`` (byte formulas per
storage format), ``names`` (ignore-list matching rule), ``scheme`` (which
tensor gets which layout), ``whatif``, ``method`` (which quant_method),
``checkpoint`` (dispatch + the small methods), ``compressed_tensors``, ``modelopt``, ``kv``,
``headers`` (checkpoint-true bytes from safetensors headers).
"""

from .checkpoint import SUPPORTED_METHODS, checkpoint_scheme
from .headers import HeaderScheme, attach_checkpoint_headers
from .kv import KV_DTYPES, checkpoint_kv_cache_dtype, kv_cache_bytes, kv_cache_dtype_used, kv_cache_token_bytes
from .method import method_of
from .layouts import DEFAULT_MXFP4_BACKEND, MXFP4_MOE_PADDING, Mxfp4MoeBackend
from .scheme import DTYPE_BYTES, Scheme, UnsupportedQuantization, dtype_bytes
from .whatif import WHATIF_NAMES, whatif_scheme

__all__ = [
    "DEFAULT_MXFP4_BACKEND", "DTYPE_BYTES", "HeaderScheme", "KV_DTYPES", "MXFP4_MOE_PADDING", "Mxfp4MoeBackend",
    "SUPPORTED_METHODS", "Scheme",
    "UnsupportedQuantization", "attach_checkpoint_headers",
    "WHATIF_NAMES",
    "checkpoint_kv_cache_dtype", "checkpoint_scheme", "kv_cache_dtype_used", "dtype_bytes", "kv_cache_bytes", "kv_cache_token_bytes", "method_of",
    "whatif_scheme",
]
