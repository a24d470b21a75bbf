"""The multimodal side of vLLM's start-up budget: the encoder profile and the image limits.

What vLLM does (V1 ``gpu_model_runner.profile_run``): for a multimodal model it first runs the
vision tower on a dummy batch of the largest item the processor can produce, as many items as
the encoder budget holds (``max_num_batched_tokens``, or one item's tokens when that is larger),
and keeps those embeddings (``encoder_cache``) alive through the dummy text forward that follows;
the tower's activations are freed first, so the torch peak it measures is the larger of the tower
phase and the text phase (``profile_peak``).  The text phase grows by about one encoder budget of
text-width embeddings (and the dummy inputs, for towers with a ``TowerPeak``).  We model the cache
as a term per batched token::

    MM = MM_ENCODER * B * h_text * a          (a = activation bytes)
    B  = max(T, largest item)                 (T = max_num_batched_tokens; encoder_budget)

``B`` is vLLM's encoder budget: an image larger than ``max_num_batched_tokens`` raises it (the
largest item, ``ModelSpec.mm_item_tokens``, where a family works it out: LLaVA-1.5 / NeXT / OneVision
from their configs (``llava.anyres_item_tokens``), the Qwen-VL families from their published image
processors' ``max_pixels``, InternVL from ``max_patches`` tiles + thumbnail, Gemma 3 one pooled image, Gemma 3n / Gemma 4 per modality
(``ModelSpec.mm_item_tokens_by_modality``: vLLM's ``MultiModalBudget`` takes the max over the modalities whose
limit is > 0, ``item_tokens``); 0 elsewhere, i.e. ``T``).  The dummy video vLLM sizes by ``max_model_len``
is modelled for Qwen2-VL / Qwen2.5-VL (``video_item_tokens``, vLLM qwen2_vl.py @002d181a): the matrix prices it
per length (``exprs.encoder_lens``), together with the vision tower's own peak over the patches the profile
encodes in one forward (``TowerPeak``, read off vLLM qwen2_5_vl.py @002d181a; torch's peak is the larger of
that tower phase and the text phase, ``profile_peak``); ``limit_mm_per_prompt`` video = 0
drops it (``drop_video``).  InternVL's dummy video (interns1.py @01dc2879, ``internvl_video_frames``) is priced
the same way, without a tower peak (a lower bound); LLaVA-OneVision's (``llava_onevision_video_tokens``) and
Qwen3-VL's (``qwen3_vl_video_steps``, vLLM qwen3_vl.py @4f5768c7: the video processor spreads one pixel budget over
the frames, at most 12,288 tokens) never exceed their image items; GLM-4.1V is not modelled: with images or videos
allowed the budget here is a lower bound (docs/architecture.md "Encoder budget").

plus, for Qwen3-VL, the ``deepstack_input_embeds`` buffers vLLM allocates at model init
(``qwen3_vl.py``: ``levels`` tensors of ``max_num_batched_tokens x text hidden``), which are
exactly ``levels * T * h_text * a`` bytes.

``MM_ENCODER`` is fitted by ``scripts/calibrate_encoder.py`` on the multimodal start-ups in
tests/data/vllm_logs.csv (V1 rows with a full breakdown: llava-v1.6-mistral-7b on 0.10.2,
Mistral-Small-3.2 on 0.11.0, gemma-3-12b on 0.19.0) as the least-squares slope of the activation
the text model leaves unexplained; its per-row error is published in docs/accuracy.md.  Two fit
rows (80 excluded) from two vLLM versions: the term is a coarse one.  1.201 until Gemma 3's SigLIP
pixels moved into row 93's text phase (branch towerpeak), 0.318 since (residuals +0.06 / -0.03 GiB).

Image limits (``--limit-mm-per-prompt``): vLLM sizes the profile by the encoder budget, not by
the per-prompt limit, so any positive limit leaves the estimate unchanged; a limit of 0 for every
modality the tower serves ("text only": images, and videos for the Qwen-VL towers) skips the encoder
profile and vLLM does not build the tower (``interfaces.py`` ``SupportsMultiModal._mark_tower_model``:
"Tower model components are automatically skipped when --limit-mm-per-prompt is set to zero for all
of their modalities"), so ``text_only`` drops the tower and projector weights and the encoder term.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from reportgen.arch.mm_video import TowerPeak, video_patches
from reportgen.arch.spec import Component, ModelSpec

MM_ENCODER = 0.318         # x T * h_text * a: encoder-cache profile (scripts/calibrate_encoder.py)

_DEEPSTACK = re.compile(r"\.deepstack_merger_list\.(\d+)\.")


def deepstack_levels(spec: ModelSpec) -> int:
    """How many deepstack levels the tower feeds (Qwen3-VL: one merger each); 0 for other models."""
    return len({m.group(1) for t in spec.tensors for m in [_DEEPSTACK.search(t.name)] if m})


def encoder_bytes_per_token(multimodal: bool, hidden: int, act_b: float) -> float:
    """Bytes per encoder-budget token of the encoder profile (0 for a text-only model or run)."""
    return MM_ENCODER * hidden * act_b if multimodal else 0.0


def deepstack_bytes_per_token(multimodal: bool, hidden: int, act_b: float, deepstack: int = 0) -> float:
    """Qwen3-VL's ``deepstack_input_embeds``: ``levels`` buffers of max_num_batched_tokens x hidden."""
    return deepstack * hidden * act_b if multimodal else 0.0


def encoder_budget(max_num_batched_tokens: int, max_item_tokens: int = 0) -> int:
    """vLLM's encoder compute budget (= the encoder-cache size when not set by hand).

    ``vllm/v1/core/encoder_cache_manager.py`` @51c7cf7d, ``_set_max_num_batched_encoder_input_tokens``:
    ``max_num_batched_encoder_input_tokens`` defaults to ``max_num_batched_tokens`` and is then raised to
    ``max(..., max_tokens_per_mm_item)``; ``_set_encoder_cache_size`` takes the same value (and the same
    max), and ``compute_mm_encoder_budget`` returns both.  An item larger than the batch is therefore
    profiled whole.  ``max_item_tokens`` 0 = not worked out for the model (the batch alone).
    """
    return max(int(max_num_batched_tokens), int(max_item_tokens))


# first release with vLLM PR #43051 (merged after 2026-05-19; v0.21.0 was out by 2026-05-21, issue #43308): vllm 0.22.0
# sdist engine/arg_utils.py:2533 ("Raising max_num_batched_tokens from %d to %d ..."), absent from the 0.21.0 sdist
BATCHED_FLOOR_SINCE = (0, 22)


def batched_tokens_floor(spec: ModelSpec, vllm_version, job_max_num_batched_tokens: int | None) -> int:
    """The ``max_num_batched_tokens`` vLLM raises a *defaulted* value to for a multimodal prefix LM
    (``ModelSpec.mm_prefix_lm``); 0 = no raise.

    vLLM PR #43051 ("Auto-raise max_num_batched_tokens for prefix-LM multimodal models", fixes issue #42687),
    ``engine/arg_utils.py`` ``_set_default_max_num_seqs_and_batched_tokens_args`` (line 2643 in 0.25.1): when
    ``max_num_batched_tokens`` was not set (``orig_max_num_batched_tokens is None``) and the model
    ``is_multimodal_model and is_mm_prefix_lm``, the GPU default (2,048 / 8,192) is raised to
    ``_get_min_mm_batched_tokens`` -- the max of ``get_mm_max_tokens_per_item`` over the processor's
    ``supported_mm_limits`` (every modality the model accepts, whatever ``--limit-mm-per-prompt`` says; one
    limited to 0 does not lower it) -- and logged "Raising max_num_batched_tokens from %d to %d to accommodate
    '%s' input for prefix-LM model %s".  Such a model runs with ``disable_chunked_mm_input`` forced
    (``platforms/cuda.py``), and ``compute_mm_encoder_budget`` (``v1/core/encoder_cache_manager.py`` @003ad86e)
    refuses an item larger than the batch, so before the PR the default start raised that ValueError
    (``unchunked_item``: an ``invalid_layout`` verdict).  The raised value is ``max_num_batched_tokens`` itself:
    the profile run's dummy batch, the encoder budget, the sliding-window groups' ``window - 1 + T`` blocks per request
    (``SlidingWindowSpec.max_memory_usage_bytes``, ``v1/kv_cache_interface.py`` @001cabc1) all see it.
    Gemma 4 26B-A4B / 31B: 2,496 (a 32-frame video), above the 2,048 of a < 70 GiB GPU; E2B / E4B are not
    prefix LMs; Gemma 3 / PaliGemma items (256) never exceed a default.  A text-only serve (every limit 0:
    ``spec.multimodal`` False) is not a prefix LM (``is_mm_prefix_lm(supports_multimodal=False)``)."""
    from .profiles import parse_version   # noqa: PLC0415 - profiles imports overheads, keep encoder light
    if job_max_num_batched_tokens or not (spec.multimodal and spec.mm_prefix_lm):
        return 0
    v = parse_version(vllm_version)
    if v is not None and v < BATCHED_FLOOR_SINCE:
        return 0
    return max(spec.mm_item_tokens_by_modality.values(), default=spec.mm_item_tokens)


# first release that treats a family as a prefix LM, where later than the check itself: Gemma 4 was served causally
# (``use_bidirectional_attention`` ignored, issue #40106 of 2026-04-17) until PR #40534 (opened 2026-04-21)
# registered gemma4 in ``MM_PREFIX_LM_MODELS`` -- after 0.19 (row 52: a default 2,048 start of 26B-A4B on an A100,
# 2026-04-17) and before 0.20.0 (issue #42687 and recipes #441: the ValueError).  Other prefix LMs (Gemma 3,
# PaliGemma: FlexAttention PrefixLM, PR #27938 of 2025-11) are not gated: their 256-token items exceed no default.
# Release sdists: vllm 0.20.0 sdist transformers_utils/model_arch_config_convertor.py:478-483
# (``Gemma4ModelArchConfigConvertor.is_mm_prefix_lm``: ``use_bidirectional_attention == "vision"``); the 0.19.1 sdist's
# Gemma4 convertor has no such method and config/model.py:1200-1208 lists no gemma4.
PREFIX_LM_SINCE = {"gemma4": (0, 20)}


def unchunked_item(spec: ModelSpec, vllm_version=None) -> int:
    """The item a prefix LM must fit in one batch: vLLM refuses to start when it exceeds ``max_num_batched_tokens``
    (0 = no such check for this model / serve).

    ``platforms/cuda.py`` @002db495 ``check_and_update_config``: ``model_config.is_mm_prefix_lm and
    scheduler_config.is_multimodal_model`` -> "Forcing --disable_chunked_mm_input for models with
    multimodal-bidirectional attention"; ``compute_mm_encoder_budget`` (``v1/core/encoder_cache_manager.py``
    @003ad86e, and the same check at @51c7cf7d) then, with ``disable_chunked_mm_input``, raises ValueError
    "Chunked MM input disabled but max_tokens_per_mm_item=2496 is larger than max_num_batched_tokens=2048.
    Please increase max_num_batched_tokens." (older releases: "... max_tokens_per_mm_item (2496) is larger than
    max_num_batched_tokens (2048) ...").  ``max_tokens_per_mm_item`` is the max over the *active* modalities
    (limit > 0: ``item_tokens``, what ``apply_limits`` leaves in ``spec.mm_item_tokens``), so a video limit of 0
    brings Gemma 4's 2,496 down to its 280-token image; with every modality at 0 the function returns (0, 0)
    before the check (and the spec is not multimodal).  The check compares the *final* value: vLLM 0.22+ raises a
    defaulted value first (``batched_tokens_floor``, PR #43051), so it fires before 0.22 at a small-GPU default
    and in any version at a value set below the item (the PR leaves a set value alone) -- from the release that
    treats the family as a prefix LM (``PREFIX_LM_SINCE``: Gemma 4 from 0.20; an unparsed version: applied)."""
    from .profiles import parse_version   # noqa: PLC0415 - as batched_tokens_floor
    if not (spec.multimodal and spec.mm_prefix_lm):
        return 0
    v, since = parse_version(vllm_version), PREFIX_LM_SINCE.get(spec.family)
    if v is not None and since is not None and v < since:
        return 0
    return int(spec.mm_item_tokens or 0)


# the ``invalid_layout`` reason when ``unchunked_item`` > max_num_batched_tokens: vLLM's message, then the fixes;
# placeholders (item, batched tokens, item, batched tokens, ``unchunked_items``) -- ``str.format`` and ``pl.format``
UNCHUNKED_REASON = ("vLLM refuses to start: Chunked MM input disabled but max_tokens_per_mm_item ({}) is larger "
                    "than max_num_batched_tokens ({}) (prefix-LM multimodal model: chunked MM input forced off); set "
                    "--max-num-batched-tokens >= {}, or --limit-mm-per-prompt 0 for each modality whose item exceeds "
                    "{} tokens (items: {})")


def unchunked_items(spec: ModelSpec, vllm_version=None) -> str | None:
    """The items per modality a ``UNCHUNKED_REASON`` lists ("image 280, video 2496"): those not above the active
    maximum (a modality limited to 0 is larger than it, or absent); None when ``unchunked_item`` is 0."""
    item = unchunked_item(spec, vllm_version)
    if not item:
        return None
    by = {m: n for m, n in spec.mm_item_tokens_by_modality.items() if n <= item}
    return ", ".join(f"{m} {n}" for m, n in by.items()) or str(item)


# encoder-profile fields a family may set per vLLM release (``ModelSpec.from_release``)
VIDEO_RELEASE_FIELDS = ("mm_video_patch_tokens", "mm_video_max_patches", "mm_video_minus_tokens")
MM_RELEASE_FIELDS = ("mm_item_tokens", "mm_item_tokens_by_modality", "mm_tower_peak", *VIDEO_RELEASE_FIELDS)


def _release_without(spec: ModelSpec, fields: tuple[str, ...], keep=None) -> tuple:
    """``spec.from_release`` without the entries for ``fields``; ``keep``: a per-release tensor list keeps only the
    tensors it accepts."""
    out = []
    for first, name, value in spec.from_release:
        if name in fields:
            continue
        if name == "tensors" and keep is not None:
            value = [t for t in value if keep(t)]
        out.append((first, name, value))
    return tuple(out)


def text_only(spec: ModelSpec) -> ModelSpec:
    """The spec vLLM serves with every modality limited to 0: no tower, no projector, no profile."""
    if not spec.multimodal:
        return spec
    kept = [t for t in spec.tensors if t.component is not Component.VISION]
    # per-release values (MiniMax-M3: the fp32 patch conv and the encoder items from vLLM 0.34) lose the tower and
    # the items too, or the job's release (resolved after the limits, estimate/served.py) would bring them back
    releases = _release_without(spec, MM_RELEASE_FIELDS, lambda t: t.component is not Component.VISION)
    return dataclasses.replace(spec, tensors=kept, multimodal=False, from_release=releases,
                               notes=[*spec.notes, "text only (--limit-mm-per-prompt 0): vision tower and "
                                      "projector not loaded, no encoder profile"])


def parse_limits(value: str | Mapping | None) -> dict[str, int] | None:
    """``--limit-mm-per-prompt`` as vLLM takes it: JSON ``{"image": 2, "video": 0}`` or ``image=2,video=0``.

    Returns ``{modality: count}`` (None = vLLM's default, every modality allowed).  Raises
    ValueError naming the bad part.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text.startswith("{"):
            import json
            try:
                value = json.loads(text)
            except json.JSONDecodeError as e:
                raise ValueError(f"limit_mm_per_prompt: not valid JSON ({e.msg})") from None
        else:
            pairs = {}
            for part in text.split(","):
                k, sep, v = part.partition("=")
                if not sep or not k.strip():
                    raise ValueError(f"limit_mm_per_prompt: expected modality=count, got {part!r}")
                pairs[k.strip()] = v.strip()
            value = pairs
    if not isinstance(value, Mapping):
        raise ValueError("limit_mm_per_prompt: must be a table of modality = count")
    out: dict[str, int] = {}
    for k, v in value.items():
        if isinstance(v, Mapping):      # vLLM also takes {"image": {"count": 2, ...}}
            v = v.get("count")
        try:
            n = int(v)
        except (TypeError, ValueError):
            raise ValueError(f"limit_mm_per_prompt.{k}: must be a non-negative integer, got {v!r}") from None
        if n < 0 or isinstance(v, bool) or (isinstance(v, float) and v != n):
            raise ValueError(f"limit_mm_per_prompt.{k}: must be a non-negative integer, got {v!r}")
        out[str(k)] = n
    return out


# the modalities each tower serves (vLLM ``_mark_tower_model(vllm_config, {...})``); default: images only
TOWER_MODALITIES = {"qwen2_vl": ("image", "video"), "qwen2_5_vl": ("image", "video"),
                    "qwen3_vl": ("image", "video"), "qwen3_vl_moe": ("image", "video"),
                    "qwen3_5": ("image", "video"), "qwen3_5_moe": ("image", "video"),
                    "llava_onevision": ("image", "video"), "internvl": ("image", "video"),
                    "phi4_multimodal": ("image", "audio"), "gemma3n": ("image", "audio"),
                    "gemma4": ("image", "video", "audio"),
                    # vllm/models/minimax_m3/nvidia/model.py 0.34.0 sdist :1886, 0.24.0 :1029
                    "minimax_m3_vl": ("image", "video")}

# models whose towers vLLM builds and loads whatever the limits say (no ``_mark_tower_model``): a limit of 0 for
# every modality skips the encoder profile only
TOWERS_ALWAYS_BUILT = {"phi4_multimodal": "vLLM phi4_multimodal.py @f8cc4535 builds image_embed and audio_embed "
                                          "unconditionally"}
# composites with one tower per set of modalities (vLLM marks each tower with its own modalities): the tensors
# vLLM leaves unbuilt when every modality of the set is limited to 0, by name prefix.
# gemma3n_mm.py: ``_mark_tower_model(vllm_config, "image")`` around vision_tower + embed_vision, ``"audio"``
# around audio_tower + embed_audio; gemma4_mm.py @01bae219: ``{"image", "video"}`` around vision_tower +
# embed_vision (videos are frames through the vision tower), ``"audio"`` around audio_tower + embed_audio (built
# only when the config has an ``audio_config``)
MODALITY_TENSORS = {"gemma3n": {("image",): ("model.vision_tower.", "model.embed_vision."),
                                ("audio",): ("model.audio_tower.", "model.embed_audio.")},
                    "gemma4": {("image", "video"): ("model.vision_tower.", "model.embed_vision."),
                               ("audio",): ("model.audio_tower.", "model.embed_audio.")}}


def _towers(spec: ModelSpec) -> dict[tuple[str, ...], tuple[str, ...]]:
    """The per-modality towers of a ``MODALITY_TENSORS`` model that the spec holds (a Gemma 4 without
    ``audio_config`` has no audio tower, and vLLM then accepts no audio limit: ``get_supported_mm_limits``)."""
    towers = MODALITY_TENSORS.get(spec.family, {})
    return {mods: pre for mods, pre in towers.items() if any(t.name.startswith(pre) for t in spec.tensors)}


def tower_modalities(spec: ModelSpec) -> tuple[str, ...]:
    towers = _towers(spec)
    if towers:
        return tuple(m for mods in towers for m in mods)
    return TOWER_MODALITIES.get(spec.family, ("image",))


def is_text_only(limits: Mapping[str, int] | None, modalities: tuple[str, ...] = ("image",)) -> bool:
    """Every modality of the tower is limited to 0 (a modality not named keeps vLLM's default, > 0)."""
    return bool(limits) and all(limits.get(m, 1) == 0 for m in modalities)


def item_tokens(spec: ModelSpec, limits: Mapping[str, int] | None) -> int:
    """The largest item vLLM profiles under these limits: ``MultiModalBudget`` (``vllm/multimodal/budget.py``
    @03ff0a31) asks ``get_mm_max_toks_per_item`` for the *active* modalities only (limit > 0) and
    ``compute_mm_encoder_budget`` takes their max.  A spec without per-modality values keeps ``mm_item_tokens``."""
    by = spec.mm_item_tokens_by_modality
    if not by:
        return spec.mm_item_tokens
    return max((n for m, n in by.items() if not limits or limits.get(m, 1) > 0), default=0)


def apply_limits(spec: ModelSpec, limits: Mapping[str, int] | None) -> ModelSpec:
    """The spec as vLLM serves it under these per-prompt limits (vLLM skips a tower whose every
    modality is limited to 0: ``SupportsMultiModal._mark_tower_model``; a ``TOWERS_ALWAYS_BUILT`` model keeps its
    towers' weights and loses only the encoder profile; a ``MODALITY_TENSORS`` model loses the tower of each
    set of modalities limited to 0, and its largest item is the largest of the modalities left)."""
    if not spec.multimodal or not limits:
        return spec
    if is_text_only(limits, tower_modalities(spec)):
        kept = TOWERS_ALWAYS_BUILT.get(spec.family)
        if kept is None:
            return text_only(spec)
        return dataclasses.replace(spec, multimodal=False, notes=[
            *spec.notes, f"text only (--limit-mm-per-prompt 0): no encoder profile, but the towers stay loaded ({kept})"])
    if limits.get("video", 1) == 0:
        spec = drop_video(spec)
    elif limits.get("image", 1) == 0 and spec.mm_video_minus_tokens:
        # no image in vLLM's mm_counts: the dummy video is sized from the whole max_model_len
        spec = dataclasses.replace(spec, mm_video_minus_tokens=0)
    item = item_tokens(spec, limits)
    if item != spec.mm_item_tokens:
        spec = dataclasses.replace(spec, mm_item_tokens=item, notes=[
            *spec.notes, f"largest multimodal item under the limits: {item:,} tokens (the modalities left)"])
    towers = _towers(spec)
    off = [mods for mods in towers if is_text_only(limits, mods)]
    if not off:
        return spec
    drop = tuple(p for mods in off for p in towers[mods])
    names = [" / ".join(mods) for mods in off]
    return dataclasses.replace(spec, tensors=[t for t in spec.tensors if not t.name.startswith(drop)],
                               notes=[*spec.notes, f"--limit-mm-per-prompt {', '.join(names)} = 0: the "
                                      f"{' and '.join(names)} tower{'s' if len(off) > 1 else ''} and embedder"
                                      f"{'s' if len(off) > 1 else ''} not loaded"])


def video_item_tokens(spec: ModelSpec, max_model_len: int, limits: Mapping[str, int] | None = None) -> int:
    """The largest item vLLM profiles at ``max_model_len``: ``max(image item, video item)``, the video
    counted only while its limit is > 0 (``limit_mm_per_prompt`` video = 0 gives the image-only
    ``mm_item_tokens``).  A spec without a modelled video item: ``item_tokens`` unchanged."""
    base = item_tokens(spec, limits)
    if not spec.multimodal or (limits and limits.get("video", 1) == 0):
        return base
    minus = 0 if limits and limits.get("image", 1) == 0 else spec.mm_video_minus_tokens
    video = video_patches(max_model_len, spec.mm_video_patch_tokens, spec.mm_video_max_patches, minus)
    return max(base, video * spec.mm_video_patch_tokens)


def drop_video(spec: ModelSpec) -> ModelSpec:
    """``limit_mm_per_prompt`` video = 0: vLLM's budget leaves the video modality out (``MultiModalBudget``
    asks only the active modalities), so the largest item is the image again."""
    if not spec.mm_video_patch_tokens and not any(e[1] in VIDEO_RELEASE_FIELDS for e in spec.from_release):
        return spec
    return dataclasses.replace(spec, mm_video_patch_tokens=0, mm_video_max_patches=0, mm_video_minus_tokens=0,
                               from_release=_release_without(spec, VIDEO_RELEASE_FIELDS), notes=[
        *spec.notes, "--limit-mm-per-prompt video = 0: no max_model_len-sized dummy video in the encoder profile"])


def tower_bytes_per_token(multimodal: bool, peak: TowerPeak | None, tp: int, act_b: float) -> float:
    return peak.bytes_per_token(tp, act_b) if multimodal and peak is not None else 0.0


def tower_input_bytes_per_token(multimodal: bool, peak: TowerPeak | None) -> float:
    """Bytes per encoded token of the dummy inputs ``profile_run`` keeps through the text phase."""
    return peak.input_bytes_per_token() if multimodal and peak is not None else 0.0


def profile_peak(text: float, kept: float, tower: float) -> float:
    """Torch's peak over vLLM's profile run, above the weights (the scalar form of ``exprs.encoder_lens``).

    ``profile_run`` (vllm/v1/worker/gpu_model_runner.py @000fc94b; the same order in the 0.10-era copy under
    search-index id 8221455114, where the call was ``get_multimodal_embeddings`` and the cache
    ``encoder_cache["tmp"]``): (1) ``dummy_encoder_outputs = self.model.embed_multimodal(**batched_dummy_mm_inputs)``
    -- the tower's activations are locals of that call and are freed when it returns; (2) the outputs go into
    ``self.encoder_cache``; (3) ``self._dummy_run(self.max_num_tokens, is_profile=True)`` and, on the last PP rank,
    ``_dummy_sampler_run``; (4) only then ``self.encoder_cache.clear()``.  ``batched_dummy_mm_inputs`` is a local
    of ``profile_run``, alive to the end.  The worker reads one ``torch.cuda.memory_stats`` peak over the whole
    call, so the activation is the larger of the two phases::

        tower phase = kept + tower peak             (kept: buffers allocated with the model, a_add_t)
        text phase  = text forward (+ sampler) + kept + encoder cache (MM_ENCODER x B x h x a) + dummy inputs

    ``text`` = the text phase, ``kept`` = what both phases hold, ``tower`` = the tower's own peak (its inputs
    included).  Before this the tower peak was added to the text phase (an upper bound)."""
    return max(float(text), float(kept) + float(tower))


def encoder_profile_tokens(max_num_batched_tokens: int, image_item: int, video_item: int = 0) -> tuple[int, int]:
    """(encoder budget, tokens the tower encodes in the profile's one forward): the largest item is the
    larger of the image and the video; the budget ``max(T, item)`` (``encoder_budget``); ``profile_run``
    encodes ``max(1, budget // item)`` items of it (``MultiModalBudget``'s items per batch).  Scalar twin of
    ``exprs.encoder_lens``."""
    item = max(int(image_item), int(video_item))
    budget = encoder_budget(max_num_batched_tokens, item)
    return budget, (max(1, budget // item) * item if item > 0 else 0)
