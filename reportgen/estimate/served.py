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

``spec_for_version`` also resolves the facts that change between releases without refusing anything
(``release_values``: ``ModelSpec.from_release``, filled by arch/rope.py -- the derived maximum
``max_model_len_limit`` and the rotary caches ``rope_caches``), so every consumer of the versioned spec (the
matrix's ``max_pos`` length rule and weights, ``reportgen estimate`` through it) sees the job's release.
"""

from __future__ import annotations

import re
from dataclasses import replace

from reportgen.arch.spec import ModelSpec

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


def release_values(spec: ModelSpec, version) -> ModelSpec:
    """``spec`` with the values its ``from_release`` entries give vLLM ``version`` (per field the entry of the
    latest release at or below it; none: the field's own, oldest-release value) -- a copy when any applies;
    ``spec`` itself when the version is unknown or nothing changes."""
    v = _minor(version)
    if v is None or not spec.from_release:
        return spec
    changes = {}
    for first, name, value in sorted(spec.from_release, key=lambda e: tuple(e[0])):
        if v >= tuple(first):
            changes[name] = value
    return replace(spec, **changes) if changes else spec


def spec_for_version(spec: ModelSpec, version) -> ModelSpec:
    """``spec`` as vLLM ``version`` serves it: its ``release_values``, and marked unsupported when the release
    cannot load it (its architecture removed, or a config vLLM builds only from ``spec.served_from``'s release
    on)."""
    if spec.unsupported_reason:
        return spec
    spec = release_values(spec, version)
    reason = removed_reason(spec.architectures, version) or _before_served_from(spec, version)
    return replace(spec, unsupported_reason=reason) if reason else spec


def _before_served_from(spec: ModelSpec, version) -> str | None:
    v, first = _minor(version), spec.served_from
    if v is None or first is None or v >= first[0]:
        return None
    return (f"vLLM {v[0]}.{v[1]} cannot build this config: {first[1]}; set vllm_version to "
            f"{first[0][0]}.{first[0][1]} or newer to price it")
