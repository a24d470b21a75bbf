"""CUDA-graph capture sizes: how many graphs vLLM captures for a job's scheduler limits, per release.

Why a module: the profile table (``profiles.py``) says which capture rule a range of releases follows
(``VllmProfile.capture_rule``, ``capture_batched_tokens``); this module applies that rule to a job's
``max_num_seqs`` / ``max_num_batched_tokens``, a model's own capture maximum and speculative decoding, and scales
the fitted graph memory by the count (``graph_scale``).  It reads only the profile's fields: ``VllmProfile`` is
named for the annotations only and ``release_of`` is imported where it is called, because ``profiles`` re-exports
every name here (a top-level import of ``profiles`` would be an import cycle).

The vLLM code the rules follow (the citations are at each rule):

- ``vllm/config/vllm.py`` ``_set_cudagraph_sizes`` (0.11.1+: ``[1, 2, 4] + range(8, 256, 8) + range(256, max + 1,
  16)``, vllm 0.11.1 sdist config/vllm.py:807-812; the off-grid ``max_num_batched_tokens`` appended from 0.20.1,
  vllm 0.20.1 sdist config/vllm.py:1527-1532);
- the 0.10 / 0.11.0 step-8 list: vllm 0.10.0 sdist config.py:2451-2456 and :4760-4777, 0.10.1 / 0.10.2
  config/scheduler.py:244 and config/__init__.py:3652-3669, 0.11.0 config/__init__.py:590-599 with FULL graphs up to
  max_num_seqs (v1/worker/gpu_model_runner.py:3443-3465);
- ``vllm/config/compilation.py`` ``adjust_cudagraph_sizes_for_spec_decode`` @ee525ce4 (``spec_rounded_sizes``; Model
  Runner V1 only), and for Model Runner V2 (every model from 0.29) the request-count decode sizes of
  ``_set_cudagraph_sizes`` and ``v1/worker/gpu/cudagraph_utils.py`` ``_init_candidates`` (``MRV2_SPEC_FROM``);
- ``vllm/model_executor/models/config.py`` ``GptOssForCausalLMConfig`` @1936cf38 (``MODEL_MAX_CAPTURE``; per release
  in the 0.10.1, 0.10.2, 0.11.0 and 0.11.1 sdists).
"""

from __future__ import annotations

import bisect
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .profiles import VllmProfile

REFERENCE_CAPTURE_SIZES = 102  # the 0.19 fit: max_num_seqs 1024 -> PIECEWISE=51 + FULL=51 (largest 512)


# models whose vLLM config class raises ``max_cudagraph_capture_size`` (when the user sets neither
# ``cudagraph_capture_sizes`` nor ``max_cudagraph_capture_size``): model_type -> the maximum.
# vLLM ``model_executor/models/config.py`` @1936cf38 ``GptOssForCausalLMConfig`` ("Overriding max
# cuda graph capture size to 1024 for performance", printed in rows G01/G02; 992 on ROCm, not modelled)
MODEL_MAX_CAPTURE = {"gpt_oss": 1024}
OVERRIDE_CAPTURE = 1024
# per release (branch patchver; models/config.py ``GptOssForCausalLMConfig``): the vllm 0.10.0 sdist has no such class
# (models/config.py:306 ``MODELS_CONFIG_MAP`` without it; GptOssForCausalLM is first listed in 0.10.1); vllm 0.10.1
# sdist models/config.py:250-275 and 0.10.2 :261-286 raise the list to 1024; vllm 0.11.0 sdist models/config.py:248-273
# to ``range(256, 993, 16)`` ("Overriding max cuda graph capture size to 992"); vllm 0.11.1 sdist models/config.py:254-273
# ``max_cudagraph_capture_size = 1024`` again
MODEL_CAPTURE_OVERRIDE_FROM = (0, 10, 1)
OVERRIDE_CAPTURE_0110 = 992

# The default capture ceiling (``default_max_graph_size`` of ``_set_cudagraph_sizes``): 512, and from vLLM 0.28.0 1024
# on data-center Blackwell -- "1024 if current_platform.is_device_capability_family(100) else 512" (vllm 0.28.0 sdist
# config/vllm.py:1937-1939, 0.29.0 :2006-2008, 0.34.0 :2401-2403; absent from every sdist 0.20.0-0.27.1), where the
# family is any 10.x (platforms/interface.py:587-598: ``to_int() // 10``): B200 / GB200 (10.0), B300 / GB300 (10.3); not the
# SM 12.x cards
CAPTURE_CEILING = 512
DC_BLACKWELL_CAPTURE_CEILING = 1024
DC_BLACKWELL_CEILING_FROM = (0, 28, 0)
# from vLLM 0.31.0 an off-grid max_num_seqs is captured too (uniform decode at one token a request): "elif max_num_seqs
# <= max_cudagraph_capture_size: uniform_decode_sizes = [max_num_seqs]" (vllm 0.31.0 sdist config/vllm.py; 0.34.0
# :2448-2449), kept when it is within max_num_batched_tokens (:2500-2502); 0.29 / 0.30 append decode sizes only
# with speculative decoding
DECODE_SIZE_APPENDED_FROM = (0, 31, 0)


# vLLM 0.34.0 splits the capture set for Model Runner V2 into prefill (token-keyed PIECEWISE) and decode (request-keyed
# FULL) graphs, and on SM 10.x -- unless the deprecated cudagraph_capture_sizes / max_cudagraph_capture_size are set --
# gives each a wider default grid (``wide_defaults``, vllm 0.34.0 sdist config/vllm.py:2604-2665): prefill graphs up
# to min(8192, max_num_batched_tokens) tokens on ``prefill_cudagraph_capture_grid`` (config/compilation.py:89-101: 54
# sizes at 8192) and decode graphs up to max_num_seqs requests on ``decode_cudagraph_capture_grid`` (:122-127: 64 at
# 1024), within ``max_decode_cudagraph_capture_tokens`` 8192 (config/vllm.py:2608-2612;
# ``decode_cudagraph_capture_shapes`` :54-68).  Elsewhere both take the shared list above (decode: its sizes up to
# max_num_seqs, as before).  0.33.0 has no such split (no ``prefill_cudagraph_capture_token_sizes`` in its sdist).
SPLIT_CAPTURE_FROM = (0, 34, 0)
WIDE_PREFILL_TOKENS = 8192
WIDE_DECODE_TOKENS = 8192

# Model Runner V2 with speculative decoding (q = 1 + num_speculative_tokens > 1).  vLLM rounds the capture sizes up to
# multiples of q (``adjust_cudagraph_sizes_for_spec_decode``) only on Model Runner V1: "MRV2 handles cudagraph capture
# sizing in cudagraph_utils.py and doesn't need below" (``not use_v2_model_runner``: vllm 0.29.0 sdist
# config/compilation.py:1481-1496, 0.31.0 :1492-1507, the same guard from 0.25.0 :1425-1440; the 0.34.0 sdist has no
# such call left).  Instead, from 0.29, ``_set_cudagraph_sizes`` appends uniform decode sizes built on a request-count
# grid (``uniform_decode_sizes`` / ``request_counts``: vllm 0.29.0 sdist config/vllm.py:2002-2092 and :2140-2145, the
# same in 0.30.0-0.33.0; 0.34.0 :2397-2449 and :2498-2503), and MRV2's ``CudaGraphManager._init_candidates`` captures
# one PIECEWISE graph per size and one FULL uniform decode graph per request count (``_mrv2_decode_count``).  Every
# model runs MRV2 from 0.29 (profile ``mrv2 == "all"``); before, the MRV1 rule is kept (which models ran MRV2 there is
# per model, not known to the per-GPU count, and their graphs are not in vLLM's budget: ``model_runner.py``).
MRV2_SPEC_FROM = (0, 29, 0)


def _request_counts(max_reqs: int, ceiling: int) -> list[int]:
    """vLLM ``request_counts`` (vllm 0.29.0 sdist config/vllm.py:2030-2037): ``[1, 2, 4] + range(8, 256, 8) +
    range(256, max + 1, 16)`` up to ``max = min(max_reqs, ceiling)``, and ``max`` itself."""
    top = min(max_reqs, ceiling)
    return sorted(set(_size_list(top)) | {top})


def _mrv2_decode_count(sizes: list[int], max_num_seqs: int, q: int, version) -> int:
    """FULL (uniform decode) graphs Model Runner V2 captures for the token sizes ``sizes`` at ``q`` tokens a request.

    0.29-0.33: each size rounded up to a multiple of q, kept when within ``max_num_seqs x q`` tokens and the maximum
    capture size, de-duplicated (``_init_candidates``: vllm 0.29.0 sdist v1/worker/gpu/cudagraph_utils.py:252-274,
    0.31.0 :313-335, 0.33.0 :321-343).  0.34: the request counts ``min(cdiv(s, q), max_num_seqs)`` of the sizes whose
    rounded-up width is within the maximum (``_split_cudagraph_capture_sizes``: vllm 0.34.0 sdist
    config/vllm.py:2661-2671), each captured as an (n, q) graph (v1/worker/gpu/cudagraph_utils.py:331-367,
    ``decode_cudagraph_capture_shapes`` config/compilation.py:54-68: all within its limit, since n x q is within the
    recorded maximum).  The two differ only for a user list reaching past max_num_seqs x q."""
    top = max(sizes)
    rounded = [-(-x // q) for x in sizes if -(-x // q) * q <= top]
    if version is None or tuple(version) >= SPLIT_CAPTURE_FROM:
        return len({min(n, max_num_seqs) for n in rounded})
    return len({n for n in rounded if n <= max_num_seqs})


def _walk_grid(limit: int, step) -> list[int]:
    """vLLM ``_walk_grid`` (config/compilation.py:77-86): 1, ..., ``limit``, each the next multiple of the largest power
    of two not above ``step(size)``."""
    grid, size = [], 1
    while size < limit:
        grid.append(size)
        stride = 1 << max(0, math.floor(math.log2(max(1.0, step(size)))))
        size = (size // stride + 1) * stride
    return [*grid, limit] if limit else []


def prefill_grid(max_tokens: int) -> list[int]:
    """vLLM 0.34 ``prefill_cudagraph_capture_grid`` (no interactivity head): 54 sizes at 8192."""
    return _walk_grid(max_tokens, lambda t: min(t, max(8, t / 4), 0.07 * max(t, 4096)))


def decode_grid(max_requests: int) -> list[int]:
    """vLLM 0.34 ``decode_cudagraph_capture_grid``: 64 request counts at 1024."""
    return _walk_grid(max_requests, lambda n: 0.65 * n ** (2 / 3))


def wide_sm100(capability, version, user_set: bool) -> bool:
    """Whether vLLM 0.34+ gives this GPU its wide prefill / decode grids: SM 10.x, no user capture range."""
    return (not user_set and capability is not None and int(capability[0]) == 10
            and (version is None or tuple(version) >= SPLIT_CAPTURE_FROM))


def _wide_count(max_num_seqs: int, max_num_batched_tokens: int, q: int) -> int:
    """Graphs of the 0.34 SM 10.x wide defaults: the prefill grid, and the decode request grid up to the most
    requests ``max_decode_cudagraph_capture_tokens // q`` holds (``decode_cudagraph_capture_shapes``: the first size
    above the limit is captured at the limit)."""
    prefill = prefill_grid(min(WIDE_PREFILL_TOKENS, max_num_batched_tokens))
    limit = min(max_num_seqs, min(max_num_batched_tokens, WIDE_DECODE_TOKENS) // q)
    sizes = decode_grid(max_num_seqs)
    reachable = sizes[: bisect.bisect_left(sizes, limit) + 1]
    decode = {min(n, limit) for n in reachable} if limit >= 1 else set()
    return len(prefill) + len(decode)


def _decode_count(sizes: list[int], max_num_seqs: int, q: int, version) -> int:
    """FULL (uniform decode) graphs of a shared size list: its sizes up to max_num_seqs x q; from 0.34 (one token a
    request) the request counts ``min(s, max_num_seqs)`` of every size (config/vllm.py:2659-2667), so a list reaching
    past an off-list max_num_seqs captures max_num_seqs itself too."""
    if q == 1 and (version is None or tuple(version) >= SPLIT_CAPTURE_FROM):
        return _mrv2_decode_count(sizes, max_num_seqs, 1, version)     # the 0.34 request counts at q = 1
    return len([x for x in sizes if x <= max_num_seqs * q])


def graphs_off(m) -> bool:
    """Whether a job (a ``Matrix`` or anything with its attributes) captures no CUDA graphs: ``--enforce-eager``, or
    compilation_config ``cudagraph_mode`` NONE (the job parser upper-cases it)."""
    return bool(getattr(m, "enforce_eager", False)) or (getattr(m, "cudagraph_mode", None) or "") == "NONE"


def capture_ceiling(capability, version) -> int:
    """vLLM's default capture ceiling on a GPU of ``capability`` ((major, minor); None: not known) at ``version``
    ((major, minor, patch); None: the newest)."""
    if capability is None or int(capability[0]) != 10:
        return CAPTURE_CEILING
    if version is not None and tuple(version) < DC_BLACKWELL_CEILING_FROM:
        return CAPTURE_CEILING
    return DC_BLACKWELL_CAPTURE_CEILING


def model_max_capture(model_type, version=None) -> int | None:
    """The capture maximum a model's vLLM config class sets for ``version`` ((major, minor[, patch]); None = the
    newest), None when it sets none: gpt_oss 1024 from 0.10.1, 992 in 0.11.0 only (``OVERRIDE_CAPTURE_0110``)."""
    top = MODEL_MAX_CAPTURE.get(model_type)
    if top is None or version is None:
        return top
    from .profiles import release_of   # noqa: PLC0415 - profiles re-exports this module: no top-level import
    v = release_of(tuple(version))
    if v < MODEL_CAPTURE_OVERRIDE_FROM:
        return None
    return OVERRIDE_CAPTURE_0110 if v[:2] == (0, 11) and v[2] == 0 else top


def _sizes_up_to(top: int) -> int:
    """len([1, 2, 4] + range(8, min(top + 1, 256), 8) + range(256, top + 1, 16)) below ``top``."""
    n = len([s for s in (1, 2, 4) if s <= top])
    if top >= 8:
        n += len(range(8, min(top + 1, 256), 8))
    if top >= 256:
        n += len(range(256, top + 1, 16))
    return n


def _step8_count(top: int) -> int:
    """len([1, 2, 4] + range(8, top + 1, 8)) up to ``top``: the 0.10 / 0.11.0 capture list."""
    return len([s for s in (1, 2, 4) if s <= top]) + len(range(8, top + 1, 8))


def _size_list(top: int) -> list[int]:
    """``[1, 2, 4] + range(8, 256, 8) + range(256, top + 1, 16)`` up to ``top``."""
    return ([x for x in (1, 2, 4) if x <= top] + list(range(8, min(top + 1, 256), 8))
            + (list(range(256, top + 1, 16)) if top >= 256 else []))


def spec_rounded_sizes(sizes: list[int], q: int, top: int) -> list[int]:
    """vLLM ``adjust_cudagraph_sizes_for_spec_decode`` (config/compilation.py @ee525ce4): every size
    rounded up to a multiple of ``q = 1 + num_speculative_tokens``, those above ``top`` (the maximum
    capture size) dropped; ``[q]`` when none is left and ``q <= top``."""
    if q <= 1:
        return sizes
    out = sorted({-(-x // q) * q for x in sizes if -(-x // q) * q <= top})
    return out or ([q] if q <= top else [])


def capture_sizes(p: VllmProfile, max_num_seqs: int, max_num_batched_tokens: int,
                  enforce_eager: bool = False, max_capture: int | None = None, num_spec: int = 0,
                  ceiling: int = CAPTURE_CEILING, version=None, sizes_given: tuple[int, ...] | None = None,
                  wide: bool = False, mrv2: bool | None = None) -> int:
    """How many CUDA graphs vLLM captures (0 with ``--enforce-eager``).

    0.11+ (FULL_AND_PIECEWISE): PIECEWISE graphs for the sizes up to ``max = min(2 x
    max_num_seqs, 512, max_num_batched_tokens)`` and FULL (uniform decode) graphs for the sizes
    up to ``min(max, max_num_seqs)``; sizes ``[1, 2, 4] + range(8, 256, 8) + range(256, max + 1,
    16)``.  The logs print both counts: "PIECEWISE=51 (largest=512), FULL=35 (largest=256)" at
    max_num_seqs 256 (LMCache#3430), "PIECEWISE=35 (largest=256), FULL=19 (largest=128)" at 128.
    Speculative decoding on Model Runner V1 (``num_spec`` = num_speculative_tokens K, q = 1 + K; 0.11-0.28): the maximum
    is ``min(max_num_seqs x q x 2, 512)`` (``config/vllm.py`` ``_set_cudagraph_sizes``), capped at
    ``max_num_batched_tokens``; the sizes are rounded up to multiples of q (``spec_rounded_sizes``) and
    the FULL (uniform decode) graphs are those up to ``max_num_seqs x q`` tokens.  0.10's fixed list
    is not rounded here (that release's spec-decode capture was not read).
    0.10 (PIECEWISE only): ``[1, 2, 4] + range(8, min(2 x max_num_seqs, 512) + 1, 8)`` capped at
    ``max_num_batched_tokens`` -- vllm 0.10.0 sdist, config.py:2451-2456 (``SchedulerConfig.cuda_graph_sizes``
    defaults to ``[min(max_num_seqs * 2, 512)]``) and :4760-4777 (the list, then ``size <= max_num_batched_tokens``);
    the same in the 0.10.1 / 0.10.2 sdists (config/scheduler.py:244, config/__init__.py:3652-3669): 67 sizes from
    max_num_seqs 256 up, 35 at 128 (it was taken as 67 whatever max_num_seqs before branch versionaudit).
    The flags branch passes ``enforce_eager`` (``--enforce-eager``: no graphs).

    ``max_capture``: a model's own ``max_cudagraph_capture_size`` (vLLM
    ``model_executor/models/config.py`` ``GptOssForCausalLMConfig.verify_and_update_config``
    @1936cf38 sets 1024 "for performance" when the user sets neither the sizes nor the maximum;
    ``config/vllm.py`` ``_set_cudagraph_sizes`` then uses it instead of ``min(2 x max_num_seqs,
    512)``, still capped by ``max_num_batched_tokens``).  gpt-oss-20b at max_num_seqs 1024 logs
    "PIECEWISE ... 83/83" and "(decode, FULL) 83/83" (rows G01/G02); before 0.11 the override
    replaced the size list with the same 83 sizes (``[1, 2, 4] + range(8, 256, 8) + range(256,
    1025, 16)``).

    ``ceiling``: the default maximum in place of 512 (``capture_ceiling``: 1024 on SM 10.x from 0.28).  ``version``
    ((major, minor, patch); None: the newest): from 0.31 an off-grid ``max_num_seqs`` within the maximum is captured
    too (``DECODE_SIZE_APPENDED_FROM``; without speculative decoding -- with it, ``mrv2`` below).

    User settings (0.11.1+ grid rule only; ``job.capture_settings_problem`` refuses them before): a user
    ``max_cudagraph_capture_size`` is ``max_capture`` (the sizes up to min(it, max_num_batched_tokens), no decode size
    appended); ``sizes_given`` (``cudagraph_capture_sizes``) replaces the list: de-duplicated, those above
    max_num_batched_tokens dropped (vllm 0.11.1 sdist config/vllm.py:863-874, 0.34.0 :2459-2470), FULL graphs for
    those up to max_num_seqs x q as for the default list.

    ``wide`` (``wide_sm100``): vLLM 0.34's SM 10.x prefill / decode grids instead of the shared list (a model's own
    maximum does not apply there: it sets the deprecated maximum, which turns the wide defaults off -- the caller
    passes ``wide`` False with ``max_capture``).

    ``mrv2`` (None: the profile's ``mrv2 == "all"``, every model from 0.29): speculative decoding on Model Runner V2
    (``MRV2_SPEC_FROM``).  The sizes are not rounded to multiples of q; the default list (no user range, no model
    maximum) gains the uniform decode sizes ``n x q`` for the request counts n of ``_request_counts(max_num_seqs)``
    within ``min(max_num_seqs x q x 2, ceiling)`` and ``max_num_batched_tokens``; one PIECEWISE graph per size and
    the FULL graphs of ``_mrv2_decode_count``.  MTP k=1 at max_num_seqs 256 on an H100: 51 + 50 = 101 (MRV1: 100).
    The MTP / EAGLE drafter captures its own graphs in vLLM (a prefill manager over the same descriptors, and from
    k >= 2 FULL one-token draft-decode graphs): not counted here (``tables.py`` prices the draft's layers at the
    target's count)."""
    if enforce_eager:
        return 0
    q = 1 + max(0, int(num_spec))
    if wide and max_capture is None and not sizes_given:
        return _wide_count(max_num_seqs, max_num_batched_tokens, q)
    if mrv2 is None:
        mrv2 = getattr(p, "mrv2", "") == "all"
    # the request-count rule is 0.29's (0.25-0.28 MRV2 models: the MRV1 rule kept, MRV2_SPEC_FROM)
    spec_mrv2 = (q > 1 and mrv2 and p.capture_rule == "max_num_seqs"
                 and (version is None or tuple(version) >= MRV2_SPEC_FROM))
    if sizes_given:
        given = sorted({int(x) for x in sizes_given if int(x) <= max_num_batched_tokens})
        if not given:
            return 0
        if spec_mrv2:                              # no rounding; no decode sizes appended to a user list
            return len(given) + _mrv2_decode_count(given, max_num_seqs, q, version)
        given = spec_rounded_sizes(given, q, given[-1])
        return len(given) + _decode_count(given, max_num_seqs, q, version)
    if max_capture is not None:
        if p.capture_rule == "step8_full":         # 0.11.0's gpt_oss list stops at 992 (OVERRIDE_CAPTURE_0110)
            max_capture = min(max_capture, OVERRIDE_CAPTURE_0110)
        top = min(max_capture, max_num_batched_tokens)
        if p.capture_rule == "step8":
            return _sizes_up_to(top)
    elif p.capture_rule in ("step8", "step8_full"):
        top = min(2 * max_num_seqs, 512, max_num_batched_tokens)
        if p.capture_rule == "step8":
            return _step8_count(top)
        # 0.11.0: FULL (uniform decode) graphs for the list's sizes up to max_num_seqs x q (vllm 0.11.0 sdist
        # v1/worker/gpu_model_runner.py:3452-3465); speculative rounding was not read for 0.11.0
        return _step8_count(top) + _step8_count(min(top, max_num_seqs * q))
    else:
        top = min(2 * max_num_seqs * q, ceiling, max_num_batched_tokens)
    sizes = _size_list(top)
    if p.capture_batched_tokens and top == max_num_batched_tokens and top not in sizes:
        sizes.append(top)                          # 0.20.1+: the off-grid max_num_batched_tokens is captured too
    if (max_capture is None and q == 1 and (version is None or tuple(version) >= DECODE_SIZE_APPENDED_FROM)
            and max_num_seqs <= min(ceiling, max_num_batched_tokens)
            and max_num_seqs not in sizes):
        sizes.append(max_num_seqs)                 # 0.31+: an off-grid max_num_seqs (one-token uniform decode)
    if spec_mrv2:
        if max_capture is None:                    # 0.29+: the uniform decode sizes on the request-count grid
            widest = min(2 * max_num_seqs * q, ceiling)
            sizes = sorted(set(sizes) | {n * q for n in _request_counts(max_num_seqs, ceiling)
                                         if n * q <= min(widest, max_num_batched_tokens)})
        return len(sizes) + _mrv2_decode_count(sizes, max_num_seqs, q, version)
    sizes = spec_rounded_sizes(sizes, q, top)      # unchanged when q == 1
    return len(sizes) + _decode_count(sizes, max_num_seqs, q, version)


def graph_scale(p: VllmProfile, max_num_seqs: int, max_num_batched_tokens: int,
                enforce_eager: bool = False) -> float:
    """Graph memory relative to the fitted 102-graph set.  vLLM's estimate is linear in the
    number of captures (2nd sample x (N - 1)), so the fitted per-layer graph terms scale
    with N / 102; ``G_BASE`` is kept whole (``exprs.graph_captured``)."""
    return capture_sizes(p, max_num_seqs, max_num_batched_tokens, enforce_eager) / REFERENCE_CAPTURE_SIZES
