"""Weight storage schemes: bytes a tensor occupies, including scales and zero points.

Interface used by the estimator (keep it stable):

    scheme = whatif_scheme("fp8")            # what-if: quantize a bf16 model to X
    scheme = checkpoint_scheme(spec)         # serve the checkpoint as shipped (reads spec.quantization_config)
    scheme.name                              # e.g. "bf16", "fp8", "awq-int4-g128"
    scheme.tensor_bytes(tensor)              # bytes of the whole (unsharded) tensor, all `count` copies

Unknown scheme names / methods raise UnsupportedQuantization naming the method.
"""

from __future__ import annotations

from dataclasses import dataclass

from reportgen.arch.spec import ModelSpec, Tensor

DTYPE_BYTES = {
    "float32": 4, "fp32": 4, "float": 4,
    "bfloat16": 2, "bf16": 2, "float16": 2, "fp16": 2, "half": 2,
}


class UnsupportedQuantization(ValueError):
    """A quantization method or dtype we do not model (never silently treated as bf16)."""


@dataclass(frozen=True)
class PlainScheme:
    """Every tensor stored at one element size (bf16 / fp16 / fp32)."""

    name: str
    element_bytes: float

    def tensor_bytes(self, tensor: Tensor) -> float:
        return tensor.numel * self.element_bytes


def whatif_scheme(name: str, model_dtype: str = "bfloat16"):
    key = name.lower()
    if key in ("auto", "checkpoint"):
        key = model_dtype
    if key in DTYPE_BYTES:
        canon = {4: "fp32"}.get(DTYPE_BYTES[key], "bf16" if "b" in key else "fp16")
        return PlainScheme(canon, DTYPE_BYTES[key])
    raise UnsupportedQuantization(f"unknown weight dtype {name!r}; allowed: bf16, fp16, fp32")


def checkpoint_scheme(spec: ModelSpec):
    if spec.quantization_config:
        method = spec.quantization_config.get("quant_method", "unknown")
        raise UnsupportedQuantization(f"quantization method {method!r} is not modelled yet")
    return whatif_scheme(spec.dtype)
