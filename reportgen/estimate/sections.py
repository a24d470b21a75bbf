"""Weights by model section: the text stack, the vision tower and the projector (issue 13).

Why: a multimodal checkpoint's tower and projector are loaded on every GPU of the first
stage next to the language model; the report shows them apart so a reader sees what the
"vision" part costs.  Bytes are the as-shipped storage (the checkpoint's scheme: a
quantized text stack next to a 16-bit tower is costed as such), summed over the whole
model (not per rank).
"""

from __future__ import annotations

from reportgen.arch.spec import Component, ModelSpec
from reportgen.arch.vision_parts import is_projector

SECTIONS = ("text stack", "vision tower", "projector")


def section_of(t) -> str:
    if t.component is not Component.VISION:
        return "text stack"
    return "projector" if is_projector(t) else "vision tower"


def weight_sections(spec: ModelSpec) -> dict[str, dict[str, float]]:
    """``{section: {"params": n, "bytes": b}}`` for a multimodal spec; {} for a text-only one."""
    if not spec.multimodal or spec.unsupported_reason:
        return {}
    from .tables import scheme_for

    try:
        scheme = scheme_for(spec, "checkpoint")
        size = scheme.tensor_bytes
    except Exception:  # noqa: BLE001 - an unreadable scheme: the model dtype, said by the caller's label
        size = None
    width = {"float32": 4, "bfloat16": 2, "float16": 2}.get(spec.dtype, 2)
    out = {s: {"params": 0, "bytes": 0.0} for s in SECTIONS}
    for t in spec.tensors:
        sec = out[section_of(t)]
        sec["params"] += t.numel
        sec["bytes"] += float(size(t)) if size else t.numel * width
    return out
