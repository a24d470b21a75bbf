"""Which vision tensors are the tower and which the projector into the language model.

Why by name: both are Component.VISION (one component for everything the text stack
does not hold, as vLLM loads them together on the first stage), but the report shows
them apart (issue 13).  The projector modules have the same names in transformers,
the checkpoints and vLLM: ``multi_modal_projector`` (LLaVA, Gemma-3, Mistral-3,
Llama-4), the Qwen patch ``merger`` and ``deepstack_merger_list``, Llama-4's
``vision_adapter``, the Idefics3 / SmolVLM ``connector``, LLaVA-NeXT's ``image_newline``, Kimi-K2.5's
``mm_projector`` (transformers' name for the patch merger Kimi-VL calls ``multi_modal_projector``),
Phi-4-multimodal's ``img_projection_up`` / ``_down`` and ``{up,down}_proj_for_{speech,vision_speech}``
(vLLM's connectors) and the Gemma-3n / Gemma-4 embedders ``model.embed_vision`` / ``model.embed_audio``
(their audio tower counts as a tower).
"""

from __future__ import annotations

from reportgen.arch.spec import Component, ModelSpec, Tensor

PROJECTOR_MARKERS = ("multi_modal_projector.", ".merger.", ".deepstack_merger_list.", ".vision_adapter.",
                     ".connector.", ".mm_projector.", ".img_projection_", "_proj_for_speech.",
                     "_proj_for_vision_speech.", "model.embed_vision.", "model.embed_audio.")
PROJECTOR_NAMES = ("image_newline",)


def is_projector(t: Tensor) -> bool:
    return t.component is Component.VISION and (t.name in PROJECTOR_NAMES or any(m in t.name for m in PROJECTOR_MARKERS))


def vision_split(spec: ModelSpec) -> dict[str, int]:
    """Parameters of the vision tower and of the projector (0 and 0 for a text-only model)."""
    out = {"tower": 0, "projector": 0}
    for t in spec.tensors:
        if t.component is Component.VISION:
            # params, not numel: an ``allocated_only`` tensor (Phi-4-multimodal's audio normalisation) is no parameter
            out["projector" if is_projector(t) else "tower"] += t.params
    return out
