"""vLLM ``--quantization``: what it does to the weights reportgen costs.

Why a module of its own: the flag means two different things in vLLM and neither is a what-if.
On an unquantized checkpoint it names an *online* method -- the weights are quantized as they load
(``fp8``: ``Fp8LinearMethod`` with ``is_checkpoint_fp8_serialized`` false quantizes each Linear
weight to fp8 e4m3 with one float32 scale per tensor; embeddings, lm_head, norms stay at the model
dtype).  On a pre-quantized checkpoint it must name the checkpoint's own method (or one of vLLM's
kernels for it, e.g. ``awq_marlin`` for AWQ) and changes no byte; anything else makes vLLM refuse
to start (``ModelConfig._verify_quantization``: "Quantization method specified in the model config
... does not match the quantization method specified in the `quantization` argument").
"""

from __future__ import annotations

from .layouts import Fp8, Int8
from .method import method_of
from .scheme import Rule, Scheme, UnsupportedQuantization, any_linear, dtype_bytes, routed_experts

ONLINE_METHODS = ("fp8", "experts_int8")

# why the other methods are refused on an unquantized checkpoint (vLLM's own behaviour, one line each)
_ONLINE_REFUSED = {
    "bitsandbytes": "vLLM quantizes in flight to bitsandbytes 4-bit (BitsAndBytesModelLoader); its packed "
                    "layout is not modelled -- use a pre-quantized bnb checkpoint, or --weights-as int4 as a what-if",
    "ptpc_fp8": "online per-token-per-channel fp8 (ROCm) is not modelled; --quantization fp8 is",
    "rtn": "online round-to-nearest (RTN_NUM_BITS / RTN_GROUP_SIZE from the environment) is not modelled",
    "torchao": "torchao's online configs are not modelled",
    "mxfp4": "vLLM's mxfp4 method loads MXFP4 checkpoints (gpt-oss); it does not quantize bf16 weights",
}

# vLLM kernels that serve a checkpoint method (the override vLLM accepts for it)
_SERVES = {"awq": ("awq", "awq_marlin", "moe_wna16"), "gptq": ("gptq", "gptq_marlin", "gptq_marlin_24",
                                                            "gptq_bitblas", "bitblas", "moe_wna16"),
           "modelopt": ("modelopt", "modelopt_fp4", "modelopt_mixed"), "auto-round": ("auto-round", "autoround"),
           "fp8": ("fp8",), "fbgemm_fp8": ("fbgemm_fp8",), "compressed-tensors": ("compressed-tensors",),
           "mxfp4": ("mxfp4",), "bitsandbytes": ("bitsandbytes",)}


def online_scheme(method: str, model_dtype: str) -> Scheme:
    """The weights of an unquantized checkpoint after vLLM's online ``--quantization method``.

    ``experts_int8`` (vLLM ``quantization/experts_int8.py`` @00620f91): ``ExpertsInt8Config`` gives
    every Linear ``UnquantizedLinearMethod`` and every FusedMoE ``ExpertsInt8MoEMethod``: the routed
    experts' ``w13_weight`` / ``w2_weight`` as int8 with float32 scales per output row (``w13_scale``
    ``(E, 2 x I)``, ``w2_scale`` ``(E, H)``), quantized at load (``quantize_in_place_and_get_scales``).
    Attention, dense MLPs, shared experts, embeddings and lm_head stay at the model dtype; a dense
    model is unchanged.  Known simplification at TP > 1: the per-rank share divides every part by the
    TP size, while vLLM keeps all H rows of ``w2_scale`` on each rank (Qwen3-30B-A3B at TP 2: 24 MiB
    per rank, 0.17 % of its expert bytes)."""
    mb = dtype_bytes(model_dtype)
    if method == "experts_int8":
        return Scheme("experts-int8", mb, (Rule(routed_experts, Int8("channel")),), origin="online",
                      method="experts_int8",
                      description="vLLM online experts_int8 (--quantization experts_int8): routed-expert weights "
                      f"int8 + one fp32 scale per output row, at load; everything else at {mb} B")
    if method != "fp8":
        why = _ONLINE_REFUSED.get(method, f"vLLM's {method} method reads a pre-quantized checkpoint's "
                                          "quantization_config; this checkpoint has none")
        raise UnsupportedQuantization(
            f"--quantization {method} on an unquantized checkpoint: {why} (modelled online methods: "
            f"{', '.join(ONLINE_METHODS)})")
    return Scheme("fp8-tensor", mb, (Rule(any_linear, Fp8("tensor")),), origin="online", method="fp8",
                  description="vLLM online fp8 (--quantization fp8): Linear weights quantized at load to "
                  f"fp8 e4m3 + one fp32 scale per tensor; embeddings, lm_head, norms at {mb} B")


def check_checkpoint_method(quantization_config: dict, method: str) -> None:
    """Raise unless ``--quantization method`` is one vLLM accepts for this pre-quantized checkpoint."""
    own = method_of(quantization_config)
    if method in _SERVES.get(own, (own,)) or method_of({"quant_method": method}) == own:
        return
    raise UnsupportedQuantization(
        f"--quantization {method} does not match the checkpoint's quantization method {own!r} "
        "(vLLM refuses to start: the flag cannot re-quantize a quantized checkpoint)")
