"""Which vision tensors are the tower and which the projector into the language model.

Why by name: both are Component.VISION (one component for everything the text stack
does not hold, as vLLM loads them together on the first stage), but the report shows
them apart (issue 13).  The projector modules have the same names in transformers,
the checkpoints and vLLM: ``multi_modal_projector`` (LLaVA, Gemma-3, Mistral-3,
Llama-4), the Qwen patch ``merger`` and ``deepstack_merger_list``, Llama-4's
``vision_adapter``, the Idefics3 / SmolVLM ``connector``, LLaVA-NeXT's ``image_newline`` and the Gemma-3n /
Gemma-4 embedders ``model.embed_vision`` / ``model.embed_audio`` (their audio tower counts as a tower).
"""

from __future__ import annotations

from reportgen.arch.spec import Component, ModelSpec, Tensor

PROJECTOR_MARKERS = ("multi_modal_projector.", ".merger.", ".deepstack_merger_list.", ".vision_adapter.",
                     ".connector.", "model.embed_vision.", "model.embed_audio.")
PROJECTOR_NAMES = ("image_newline",)


def is_projector(t: Tensor) -> bool:
    return t.component is Component.VISION and (t.name in PROJECTOR_NAMES or any(m in t.name for m in PROJECTOR_MARKERS))


def vision_split(spec: ModelSpec) -> dict[str, int]:
    """Parameters of the vision tower and of the projector (0 and 0 for a text-only model)."""
    out = {"tower": 0, "projector": 0}
    for t in spec.tensors:
        if t.component is Component.VISION:
            out["projector" if is_projector(t) else "tower"] += t.numel
    return out
