"""What-if schemes: "what would this model weigh if I quantized it to X".

Why these layouts: they are what vLLM produces or loads for the common way
of getting each precision, so the what-if figure is the one a user would see
after quantizing with the standard tools --
  * fp8:  per-channel fp8 dynamic (llm-compressor FP8_DYNAMIC, the RedHatAI
          "-FP8-dynamic" checkpoints): 1 B/element + one float32 per output row;
  * int8: W8A8 int8 per channel (RedHatAI "quantized.w8a8"): int8 + float32 per row;
  * int4: AWQ-style 4-bit, group 128, with zero points: 0.5 B/element, an fp16
          scale per group of 128 inputs and packed 4-bit zeros per group.
Embeddings, lm_head, norms, biases and routers stay at the model dtype, as they
do in those checkpoints.  bf16/fp16/fp32 store every tensor at that dtype.
"""

from __future__ import annotations

from .layouts import Fp8, Int8, IntGroup
from .scheme import DTYPE_BYTES, Rule, Scheme, UnsupportedQuantization, any_linear, dtype_bytes

WHATIF_NAMES = ("auto", "checkpoint", "bf16", "fp16", "fp32", "fp8", "int8", "int4")

_CANON = {"bfloat16": "bf16", "bf16": "bf16", "float16": "fp16", "fp16": "fp16", "half": "fp16",
          "float32": "fp32", "fp32": "fp32", "float": "fp32"}


def plain_scheme(dtype: str, origin: str = "what-if") -> Scheme:
    canon = _CANON.get(str(dtype).lower().removeprefix("torch."))
    if canon is None:
        raise UnsupportedQuantization(
            f"unknown weight dtype {dtype!r}; allowed: {', '.join(WHATIF_NAMES)}")
    return Scheme(name=canon, model_dtype_bytes=DTYPE_BYTES[canon], origin=origin,
                  description=f"{canon}: every tensor at {DTYPE_BYTES[canon]} B/element")


def whatif_scheme(name: str, model_dtype: str = "bfloat16") -> Scheme:
    """The scheme for a what-if weight dtype; "auto"/"checkpoint" = the model dtype, unquantized."""
    key = str(name).lower()
    if key in ("auto", "checkpoint"):
        return plain_scheme(model_dtype)
    if key in _CANON:
        return plain_scheme(key)
    mb = dtype_bytes(model_dtype)
    rest = f"; embeddings, lm_head, norms, routers at {mb} B"
    if key == "fp8":
        return Scheme("fp8", mb, (Rule(any_linear, Fp8("channel")),), origin="what-if", method="fp8",
                      description="what-if fp8: Linear weights fp8 e4m3 + fp32 scale per output channel" + rest)
    if key == "int8":
        return Scheme("int8", mb, (Rule(any_linear, Int8("channel")),), origin="what-if", method="int8",
                      description="what-if int8 (W8A8): Linear weights int8 + fp32 scale per output channel" + rest)
    if key == "int4":
        layout = IntGroup(bits=4, group_size=128, zero_points=True, scale_bytes=2, packing="awq")
        return Scheme("int4", mb, (Rule(any_linear, layout),), origin="what-if", method="awq",
                      description="what-if int4 (AWQ-like): 4-bit packed, group 128,"
                      " fp16 scales + 4-bit zeros per group"
                      + rest)
    raise UnsupportedQuantization(f"unknown weight dtype {name!r}; allowed: {', '.join(WHATIF_NAMES)}")
