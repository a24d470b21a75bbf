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

from .layouts import Fp8
from .method import method_of
from .scheme import Rule, Scheme, UnsupportedQuantization, any_linear, dtype_bytes

ONLINE_METHODS = ("fp8",)

# vLLM kernels that serve a checkpoint method (the override vLLM accepts for it)
_SERVES = {"awq": ("awq", "awq_marlin", "moe_wna16"), "gptq": ("gptq", "gptq_marlin", "gptq_marlin_24",
                                                            "gptq_bitblas", "bitblas", "moe_wna16"),
           "modelopt": ("modelopt", "modelopt_fp4", "modelopt_mixed"), "auto-round": ("auto-round", "autoround"),
           "fp8": ("fp8",), "fbgemm_fp8": ("fbgemm_fp8",), "compressed-tensors": ("compressed-tensors",),
           "mxfp4": ("mxfp4",), "bitsandbytes": ("bitsandbytes",)}


def online_scheme(method: str, model_dtype: str) -> Scheme:
    """The weights of an unquantized checkpoint after vLLM's online ``--quantization method``."""
    if method != "fp8":
        raise UnsupportedQuantization(
            f"--quantization {method} on an unquantized checkpoint (online quantization) is not modelled; "
            f"modelled: {', '.join(ONLINE_METHODS)}")
    mb = dtype_bytes(model_dtype)
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
