"""Which vLLM releases still serve an architecture.

Why: vLLM removes model implementations over time, and a job priced for a release that no longer
loads a checkpoint's architecture must say so instead of pricing a start-up that fails. vLLM keeps
the list of removed architectures with the last release that served each one
(``_PREVIOUSLY_SUPPORTED_MODELS`` in ``vllm/model_executor/models/registry.py``, read at commit
055e47c28003156421365af985d676fc921cb075) and refuses them in ``_raise_for_unsupported`` when none
of a config's ``architectures`` is still registered: "Model architecture X was supported in vLLM
until vY, and is not supported anymore".

Removals compare by (major, minor): "until v0.23.0" serves every 0.23.x and refuses 0.24 and later.  First listings
(``FIRST_SERVED``) compare by release, patch included (branch patchver): a job at "0.22" (= 0.22.0) cannot load
``MellumForCausalLM`` (first listed in 0.22.1), a job at "0.22.1" can.
Only architectures reportgen would otherwise price matter here (Dots1, Bamba, Phi-4-multimodal's
Phi4MultimodalForCausalLM -- priced for vLLM 0.12 and older only; Mllama's weights are exact but its spec is
refused on every release, its cross-attention KV not being modelled: registry.WEIGHTS_ONLY); the whole table is
kept so a later family inherits the rule.  Checked against the release sdists (``scripts/first_served.py
--removed``: listed in its last release, in no later one): vLLM's own labels are one release early for Baichuan
(the 0.24.0 sdist still registers both Baichuan names, registry.py:81-83) and Motif (the 0.11.0 sdist registers
it, registry.py:123), so those entries hold the last release that registers them.

The other direction -- architectures a release does not list YET: ``FIRST_SERVED`` (``first_served.json``,
generated from the 0.10.0 .. 0.34.0 release sdists by ``scripts/first_served.py``) holds the first release whose
registry lists each architecture the 0.10.0 registry lacks; an older release raises "Model architectures [...]
are not supported for now" (``_raise_for_unsupported``, vllm 0.10.0 sdist registry.py:460, 0.34.0 :1329).

Architectures NO release read lists (``NEVER_LISTED``) and model types no release can parse (``UNPARSED_MODEL_TYPES``)
are refused on every release, with what vLLM raises and the form vLLM does serve: a config carrying them is one
reportgen can price (its family reads the fields) but vLLM cannot start.  Two models: MiniMax-M3 as the
aiconfigurator wheel ships it (``model_type`` ``minimax_m3``, ``MiniMaxM3ForCausalLM``; docs/decisions.md, "MiniMax-M3 as
shipped") and Step-3.7-Flash as that wheel ships it (flat ``step3p7``, ``Step3p7FlashForCausalLM``; "Step-3.7-Flash as
shipped").  Where a family refuses such a config for its own reason (step3p7 without ``text_config``),
``spec_for_version`` still gives vLLM's failure first: what vLLM raises is the reason a start-up fails, reportgen's
is why it could not price one.  ``scripts/first_served.py --removed`` checks that no registry read lists a
``NEVER_LISTED`` architecture.

The same per-version refusal applies to a single config a family marks with ``ModelSpec.served_from``
(the first release whose model file builds it, and what older ones do): exaone_moe without ``sliding_windows``
(0.32 on).

``spec_for_version`` also resolves the facts that change between releases without refusing anything
(``release_values``: ``ModelSpec.from_release``, filled by arch/rope.py -- the derived maximum
``max_model_len_limit`` and the rotary caches ``rope_caches``), so every consumer of the versioned spec (the
matrix's ``max_pos`` length rule and weights, ``reportgen estimate`` through it) sees the job's release.

A served architecture that vLLM builds through its Transformers backend from some release on is re-read
for those releases by ``tf_backend.spec_for_release`` (its rotary buffers, ``ModelSpec.backend_changes``),
after ``release_values``.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

from reportgen.arch.spec import ModelSpec
# (major, minor, patch) of a version as users write it: "0.10" is the 0.10.0 release, as everywhere (branch patchver),
# "0.10.1rc1" / "0.10.1.dev5" are priced as 0.10.1
from reportgen.estimate.profiles import parse_version as _release
from reportgen.estimate.tf_backend import spec_for_release

REGISTRY_COMMIT = "055e47c2"

LAST_SERVED: dict[str, str] = {
    "MotifForCausalLM": "0.11.0",             # vLLM's label: 0.10.2; the 0.11.0 sdist registers it
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
    "BaiChuanForCausalLM": "0.24.0",          # vLLM's label: 0.23.0; the 0.24.0 sdist registers it
    "BaichuanForCausalLM": "0.24.0",          # vLLM's label: 0.23.0; the 0.24.0 sdist registers it
    "AquilaModel": "0.24.0",
    "AquilaForCausalLM": "0.24.0",
    "Grok1ModelForCausalLM": "0.24.0",
    "Grok1ForCausalLM": "0.24.0",
    "TarsierForConditionalGeneration": "0.24.0",
    "Tarsier2ForConditionalGeneration": "0.23.0",  # "last version with Transformers v4" (0.24.0 still lists it)
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
    # in the 0.34.0 sdist's table (registry.py:883-939), not at 055e47c2
    "ErnieForSequenceClassification": "0.23.0",
    "ErnieForTokenClassification": "0.23.0",
    "MusicFlamingoForConditionalGeneration": "0.24.0",
    "Cheers": "0.28.0",
    "CheersForConditionalGeneration": "0.28.0",
    "FireRedLIDForConditionalGeneration": "0.28.0",
    "GritLM": "0.28.0",
    "PrithviGeoSpatialMAE": "0.28.0",
    "KeyeForConditionalGeneration": "0.33.0",
    "KeyeVL1_5ForConditionalGeneration": "0.33.0",
}

_FIRST = json.loads(Path(__file__).with_name("first_served.json").read_text(encoding="utf-8"))
# architecture -> first release line ("0.20") or patch ("0.10.1") whose registry lists it; absent: listed by
# 0.10.0 already, or by no release read (served, if at all, through the Transformers backend: never refused here)
FIRST_SERVED: dict[str, str] = _FIRST["first_served"]
# architecture -> the releases read that drop it after listing it, without a _PREVIOUSLY_SUPPORTED_MODELS entry
# (renames: Ernie4_5_ForCausalLM after 0.10.0; ExaoneMoEForCausalLM in 0.27.0 .. 0.31.0, an alias again in 0.32.0)
UNLISTED: dict[str, list[str]] = _FIRST["unlisted"]


# Architectures no vLLM release read (first_served.json ``_releases_read``: 0.10.0 .. 0.34.0) lists -- not in
# ``_VLLM_MODELS`` nor ``_PREVIOUSLY_SUPPORTED_MODELS`` / ``_OOT_SUPPORTED_MODELS``, nor reached by ``_normalize_arch``'s
# suffix swaps (vllm 0.34.0 sdist registry.py:1420-1444, config/model.py:2384-2401) -- and that transformers has no
# class of, so the Transformers-backend fallback (``_try_resolve_transformers``: ``getattr(transformers, arch)`` or an
# ``auto_map`` AutoModel, registry.py:1345-1418) returns None and ``_raise_for_unsupported`` raises (registry.py:1329).
# Value: the architecture vLLM serves that model as.  tests/test_minimax_m3_load.py reads every sdist for the entry.
NEVER_LISTED: dict[str, str] = {
    "MiniMaxM3ForCausalLM": (
        "vLLM serves MiniMax-M3 as MiniMaxM3SparseForConditionalGeneration -- the published MiniMaxAI/MiniMax-M3 "
        "checkpoint (model_type minimax_m3_vl, a text_config) -- and its text model MiniMaxM3SparseForCausalLM, "
        "both listed from v0.24.0 (vllm 0.24.0 sdist registry.py:163-166, :486-489)"),
    # the string "Step3p7Flash" is in no file of any release sdist 0.10.0 .. 0.34.0 (registry, configs, config
    # hooks, model files); no release has a config class for model_type step3p7 (_CONFIG_REGISTRY), so AutoConfig
    # parses it: transformers' Step3p7Config (the venv's 5.25.0; the 4.x line that 0.11.1 .. 0.19.0 require, `< 5`,
    # predates the model's May 2026 release -- inferred, not read) keeps the flat text fields as stray attributes and
    # builds its default text_config.  tests/test_step3p7_load.py reads every sdist.
    "Step3p7FlashForCausalLM": (
        "vLLM serves Step-3.7-Flash as Step3p7ForConditionalGeneration -- the published stepfun-ai/Step-3.7-Flash "
        "checkpoint (model_type step3p7, the language model under text_config as Step3p5ForCausalLM, with "
        "vision_config) -- listed from v0.23.0 (vllm 0.23.0 sdist registry.py:579, 0.34.0 :652); with a transformers "
        "that predates model_type step3p7 (the 4.x line) AutoConfig fails before the registry: \"The checkpoint you are "
        "trying to load has model type `step3p7` but Transformers does not recognize this architecture\" "
        "(transformers_utils/config.py, re-raised)"),
}

# vLLM 0.10.0 alone resolves an unlisted architecture differently: ``ModelConfig.architectures`` appends its
# Transformers backend class (TransformersForCausalLM, or TransformersForMultimodalLM for a composite config) whenever
# ``model_impl`` is not "vllm" (default "auto"; vllm 0.10.0 sdist config.py:703-717, registry.py:258-259), so a config
# that parses is built by ``AutoModel.from_config`` (models/transformers.py:457) rather than refused -- the model
# transformers' class for the model type makes of it, not vLLM's native file that reportgen prices.  From 0.10.1 the
# fallback goes through ``_try_resolve_transformers``, which needs a transformers class of the architecture's name
# or an ``auto_map`` (0.10.1 registry.py:514-575, the lookup at :543).
_V0100_BACKEND = ("in 0.10.0 itself, were the config parsed, vLLM would instead append its Transformers backend "
                  "class to the architectures (config.py:703-717) and build what transformers' "
                  "AutoModel.from_config makes of the parsed config, not vLLM's native model that reportgen prices")

# Model types no release read can parse into a config without remote code: not a key of vLLM's ``_CONFIG_REGISTRY``
# (MiniMax-M3's are minimax_m3_vl and minimax_m3_mtp: vllm 0.24.0 sdist transformers_utils/config.py:106-107, 0.34.0
# :159-160) nor of transformers' CONFIG_MAPPING (5.25.0: minimax_m3_vl, minimax_m3_vl_text, minimax_m3_vl_vision), so
# ``AutoConfig.from_pretrained`` raises and vLLM re-raises it (HFConfigParser.parse, vllm 0.34.0 sdist
# transformers_utils/config.py:478-499; 0.10.0 get_config :365-399).  reportgen never runs remote code, so a config
# that names remote code in ``auto_map`` is refused the same way.  Value: the model type vLLM parses instead.
UNPARSED_MODEL_TYPES: dict[str, str] = {
    "minimax_m3": "minimax_m3_vl (the published MiniMaxAI/MiniMax-M3 config, text fields under text_config)",
}


def never_served_reason(model_type, architectures, version) -> str | None:
    """What vLLM ``version`` raises for a config whose model type no release parses (``UNPARSED_MODEL_TYPES``) or
    whose every architecture no release lists (``NEVER_LISTED``); None otherwise, and for a version that is unknown or
    newer than the newest release read (not read: not refused).  vLLM parses the config before it resolves the
    architecture, so the model-type failure comes first when both apply."""
    v = _release(version)
    if v is None or v[:2] > _release(_FIRST["_releases_read"][-1])[:2]:
        return None
    archs = [a for a in architectures or () if isinstance(a, str)]
    where = f"vLLM {_shown(version)}"
    parts = []
    if model_type in UNPARSED_MODEL_TYPES:
        parts.append(
            f"{where} cannot parse this config: model_type {model_type!r} has no config class in vLLM's "
            f"_CONFIG_REGISTRY nor in transformers, so AutoConfig raises \"The checkpoint you are trying to load has "
            f"model type `{model_type}` but Transformers does not recognize this architecture\" and vLLM re-raises it "
            f"(transformers_utils/config.py, every release 0.10.0 .. 0.34.0); vLLM parses "
            f"{UNPARSED_MODEL_TYPES[model_type]}")
    if archs and all(a in NEVER_LISTED for a in archs):
        lead = "and were it parsed, " if parts else f"{where} cannot load this config: "
        parts.append(
            f"{lead}no vLLM release 0.10.0 .. 0.34.0 lists {', '.join(archs)} in its model registry and transformers "
            f"has no class of that name for the Transformers backend, so vLLM raises \"Model architectures {archs} "
            f"are not supported for now. Supported architectures: [...]\" (model_executor/models/registry.py "
            f"_raise_for_unsupported); " + "; ".join(NEVER_LISTED[a] for a in dict.fromkeys(archs)))
    if not parts:
        return None
    out = "; ".join(parts) + ": vLLM loads that form, this one on no release read"
    if v == (0, 10, 0) and archs and all(a in NEVER_LISTED for a in archs):
        out += f" ({_V0100_BACKEND})"
    return out


def removed_reason(architectures, version) -> str | None:
    """vLLM's refusal for a config whose every listed architecture was removed before ``version``
    (None: served, or the version / architectures are unknown)."""
    v = _release(version)
    archs = [a for a in architectures or () if isinstance(a, str)]
    if v is None or not archs or any(a not in LAST_SERVED for a in archs):
        return None
    for arch in archs:
        last = LAST_SERVED[arch]
        if v[:2] > _release(last)[:2]:          # "until v0.23.0": every 0.23.x serves it (vLLM's label names a line)
            return (f"vLLM {v[0]}.{v[1]} no longer serves {arch}: it was supported until v{last} "
                    f"(vLLM registry _PREVIOUSLY_SUPPORTED_MODELS @{REGISTRY_COMMIT}); set vllm_version to "
                    f"{last.rsplit('.', 1)[0]} or older to price it")
    return None


def _shown(version) -> str:
    """The release as the job writes it (``job.parse_vllm_version``): "0.19" (= 0.19.0) or "0.19.1"."""
    m = re.match(r"\s*v?(\d+\.\d+(?:\.\d+)?)", str(version or ""))
    return m[1] if m else str(version)


def _before(v: tuple[int, ...], first: str) -> bool:
    """Is release ``v`` older than ``first``?  A ``first`` written as a line ("0.20") is that line's .0 release: the
    JSON writes the line when the line's first release read is its .0 (or, for "0.15", 0.15.1 with no 0.15.0 sdist
    read: 0.15.0 is then not refused -- no evidence that it lacks the architecture)."""
    return tuple(v) < _release(first)


def _listed(arch: str, v: tuple[int, ...]) -> bool:
    """Does release ``v``'s registry list ``arch``?  True unless the sdists show otherwise (an architecture no
    release read lists is left to the Transformers-backend fallback: not refused here)."""
    if arch in FIRST_SERVED and _before(v, FIRST_SERVED[arch]):
        return False
    return ".".join(map(str, v)) not in UNLISTED.get(arch, ())


def added_reason(architectures, version) -> str | None:
    """vLLM's refusal for a config none of whose architectures ``version``'s registry lists (yet): None when one
    is listed, or the version / architectures are unknown.  An architecture removed before ``version``
    (LAST_SERVED) counts as unlisted too; removed_reason words the case where all were removed."""
    v = _release(version)
    archs = [a for a in architectures or () if isinstance(a, str)]
    if v is None or not archs:
        return None
    unlisted = [a for a in archs if not _listed(a, v)]
    gone = {a for a in archs if a in LAST_SERVED and v[:2] > _release(LAST_SERVED[a])[:2]}
    if not unlisted or len(set(unlisted) | gone) < len(archs):
        return None
    later = [FIRST_SERVED[a] for a in unlisted if a in FIRST_SERVED and _before(v, FIRST_SERVED[a])]
    why = "; ".join(f"{a} is listed from v{FIRST_SERVED[a]} on" if a in FIRST_SERVED and _before(v, FIRST_SERVED[a])
                    else f"{a} is not listed in v{UNLISTED[a][0]}..v{UNLISTED[a][-1]}" for a in unlisted)
    first = min(later, key=_release) if later else None
    return (f"vLLM {_shown(version)} cannot load {', '.join(unlisted)}: its model registry does not list it "
            f"({why}; vLLM release sdists, estimate/first_served.json), so vLLM raises \"Model architectures "
            f"{archs} are not supported for now\" (registry.py _raise_for_unsupported); set vllm_version to "
            + (f"{first} or newer to price it" if first else "a release that lists it to price it"))


def release_values(spec: ModelSpec, version) -> ModelSpec:
    """``spec`` with the values its ``from_release`` entries give vLLM ``version`` (per field the entry of the
    latest release at or below it; none: the field's own, oldest-release value) -- a copy when any applies;
    ``spec`` itself when the version is unknown or nothing changes."""
    v = _release(version)
    # a draft may be an EAGLE head (specdecode.EagleDraftConfig), which has no per-release values
    if v is None or not getattr(spec, "from_release", None):
        return spec
    changes = {}
    for first, name, value in sorted(spec.from_release, key=lambda e: tuple(e[0])):
        if v >= tuple(first):
            changes[name] = value
    return replace(spec, **changes) if changes else spec


def spec_for_version(spec: ModelSpec, version) -> ModelSpec:
    """``spec`` as vLLM ``version`` serves it: its ``release_values``, and marked unsupported when the release
    cannot load it (its model type parsed by no release or its architecture listed by none, its architecture removed
    or not listed yet, or a config vLLM builds only from ``spec.served_from``'s release on).  A spec its family
    refused keeps that refusal, after vLLM's own failure when every release read has one (``never_served_reason``)."""
    if spec.unsupported_reason:
        never = never_served_reason(spec.model_type, spec.architectures, version)
        if never:
            return replace(spec, unsupported_reason=f"{never}; reportgen cannot price it either: "
                                                    f"{spec.unsupported_reason}")
        return spec
    spec = release_values(spec, version)
    reason = (never_served_reason(spec.model_type, spec.architectures, version)
              or removed_reason(spec.architectures, version) or added_reason(spec.architectures, version)
              or _before_served_from(spec, version))
    if reason:
        return replace(spec, unsupported_reason=reason)
    # the model file that builds it at that release: native, or the Transformers backend (estimate/tf_backend.py)
    return spec_for_release(spec, version)


def _before_served_from(spec: ModelSpec, version) -> str | None:
    v, first = _release(version), spec.served_from
    if v is None or first is None or v >= first[0]:
        return None
    return (f"vLLM {v[0]}.{v[1]} cannot build this config: {first[1]}; set vllm_version to "
            f"{first[0][0]}.{first[0][1]} or newer to price it")
