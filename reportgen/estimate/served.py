"""Which vLLM releases still serve an architecture.

Why: vLLM removes model implementations over time, and a job priced for a release that no longer
loads a checkpoint's architecture must say so instead of pricing a start-up that fails. vLLM keeps
the list of removed architectures with the last release that served each one
(``_PREVIOUSLY_SUPPORTED_MODELS`` in ``vllm/model_executor/models/registry.py``, read at commit
055e47c28003156421365af985d676fc921cb075) and refuses them in ``_raise_for_unsupported`` when none
of a config's ``architectures`` is still registered: "Model architecture X was supported in vLLM
until vY, and is not supported anymore".

Versions compare by (major, minor): "until v0.23.0" serves every 0.23.x and refuses 0.24 and later.
Only architectures reportgen would otherwise price matter here (Dots1, Bamba, Phi-4-multimodal's
Phi4MultimodalForCausalLM -- priced for vLLM 0.12 and older only; Mllama's weights are exact but its spec is
refused on every release, its cross-attention KV not being modelled: registry.WEIGHTS_ONLY); the whole table is
kept so a later family inherits the rule.

The same per-version refusal applies to a single config a family marks with ``ModelSpec.served_from``
(the first release whose model file builds it, and what older ones do): exaone_moe without ``sliding_windows``
(0.32 on).

A served architecture that vLLM builds through its Transformers backend from some release on is re-read
for those releases by ``tf_backend.spec_for_release`` (its rotary buffers, ``ModelSpec.backend_changes``).
"""

from __future__ import annotations

import re
from dataclasses import replace

from reportgen.arch.spec import ModelSpec
from reportgen.estimate.tf_backend import spec_for_release

REGISTRY_COMMIT = "055e47c2"

LAST_SERVED: dict[str, str] = {
    "MotifForCausalLM": "0.10.2",
    "Phi3SmallForCausalLM": "0.9.2",
    "Phi4FlashForCausalLM": "0.10.2",
    "Phi4MultimodalForCausalLM": "0.12.0",
    "JAISLMHeadModel": "0.22.0",
    "ErnieModel": "0.23.0",
    "InternLM2VEForCausalLM": "0.23.0",
    "QWenLMHeadModel": "0.23.0",
    "QwenVLForConditionalGeneration": "0.23.0",
    "InternLMForCausalLM": "0.23.0",
    "DonutForConditionalGeneration": "0.10.2",
    "MllamaForConditionalGeneration": "0.10.2",
    "XverseForCausalLM": "0.23.0",
    "Dots1ForCausalLM": "0.23.0",
    "BambaForCausalLM": "0.23.0",
    "MiniMaxForCausalLM": "0.23.0",
    "MiniMaxText01ForCausalLM": "0.23.0",
    "MiniMaxM1ForCausalLM": "0.23.0",
    "MiniMaxVL01ForConditionalGeneration": "0.23.0",
    "BaiChuanForCausalLM": "0.23.0",
    "BaichuanForCausalLM": "0.23.0",
    "AquilaModel": "0.24.0",
    "AquilaForCausalLM": "0.24.0",
    "Grok1ModelForCausalLM": "0.24.0",
    "Grok1ForCausalLM": "0.24.0",
    "TarsierForConditionalGeneration": "0.24.0",
    "Tarsier2ForConditionalGeneration": "0.23.0",
    "MantisForConditionalGeneration": "0.24.0",
    "AyaVisionForConditionalGeneration": "0.24.0",
    "TeleChatForCausalLM": "0.25.0",
    "PersimmonForCausalLM": "0.25.0",
    "FuyuForCausalLM": "0.25.0",
    "Plamo2ForCausalLM": "0.26.0",
    "OuroForCausalLM": "0.26.0",
    "ArcticForCausalLM": "0.28.0",
    "ChameleonForConditionalGeneration": "0.28.0",
    "Fairseq2LlamaForCausalLM": "0.28.0",
    "HCXVisionForCausalLM": "0.28.0",
    "MPTForCausalLM": "0.28.0",
    "MptForCausalLM": "0.28.0",
    "RWForCausalLM": "0.28.0",
    "StableLMEpochForCausalLM": "0.28.0",
}


def _minor(version) -> tuple[int, int] | None:
    m = re.match(r"\s*v?(\d+)\.(\d+)", str(version or ""))
    return (int(m[1]), int(m[2])) if m else None


def removed_reason(architectures, version) -> str | None:
    """vLLM's refusal for a config whose every listed architecture was removed before ``version``
    (None: served, or the version / architectures are unknown)."""
    v = _minor(version)
    archs = [a for a in architectures or () if isinstance(a, str)]
    if v is None or not archs or any(a not in LAST_SERVED for a in archs):
        return None
    for arch in archs:
        last = LAST_SERVED[arch]
        if v > _minor(last):
            return (f"vLLM {v[0]}.{v[1]} no longer serves {arch}: it was supported until v{last} "
                    f"(vLLM registry _PREVIOUSLY_SUPPORTED_MODELS @{REGISTRY_COMMIT}); set vllm_version to "
                    f"{last.rsplit('.', 1)[0]} or older to price it")
    return None


def spec_for_version(spec: ModelSpec, version) -> ModelSpec:
    """``spec`` itself, or a copy marked unsupported when the job's vLLM release cannot load it (its
    architecture removed, or a config vLLM builds only from ``spec.served_from``'s release on)."""
    if spec.unsupported_reason:
        return spec
    reason = removed_reason(spec.architectures, version) or _before_served_from(spec, version)
    if reason:
        return replace(spec, unsupported_reason=reason)
    # the model file that builds it at that release: native, or the Transformers backend (estimate/tf_backend.py)
    return spec_for_release(spec, version)


def _before_served_from(spec: ModelSpec, version) -> str | None:
    v, first = _minor(version), spec.served_from
    if v is None or first is None or v >= first[0]:
        return None
    return (f"vLLM {v[0]}.{v[1]} cannot build this config: {first[1]}; set vllm_version to "
            f"{first[0][0]}.{first[0][1]} or newer to price it")
