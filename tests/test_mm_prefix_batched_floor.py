"""vLLM raises a defaulted ``max_num_batched_tokens`` to the largest multimodal item of a prefix LM (issues 10 / 13).

Read from vLLM (search tool):
* ``vllm/transformers_utils/model_arch_config_convertor.py`` @00bb6f59: ``Gemma4ModelArchConfigConvertor.
  is_mm_prefix_lm`` = ``text_config.use_bidirectional_attention == "vision"`` (registered for gemma4 / gemma4_text /
  gemma4_unified*); the base convertor: an ``is_mm_prefix_lm`` config attribute, else model_type in (bagel, gemma3,
  molmo2, moondream3, paligemma, umm); ``supports_multimodal`` False (every limit 0) -> False.
* ``vllm/platforms/cuda.py``: ``is_mm_prefix_lm and is_multimodal_model`` -> "Forcing --disable_chunked_mm_input
  for models with multimodal-bidirectional attention" (row 169's log).
* ``vllm/v1/core/encoder_cache_manager.py`` @003ad86e ``compute_mm_encoder_budget``: ``disable_chunked_mm_input``
  and ``max_tokens_per_mm_item > max_num_batched_tokens`` -> ValueError ("Chunked MM input disabled but
  max_tokens_per_mm_item (2496) is larger than max_num_batched_tokens (2048)", vllm-project/recipes issue #441).
* vLLM PR #43051 (fixes issue #42687), ``engine/arg_utils.py`` ``_set_default_max_num_seqs_and_batched_tokens_args``
  (line 2643 in 0.25.1): only when max_num_batched_tokens is not set and the model is multimodal and a prefix LM,
  raise it to ``_get_min_mm_batched_tokens`` (max over ``supported_mm_limits`` of ``get_mm_max_tokens_per_item``)
  -- "Raising max_num_batched_tokens from %d to %d to accommodate '%s' input for prefix-LM model %s"; its test
  ``test_mm_prefix_lm_raises_batched_tokens_floor`` (2496, "video" -> >= 2496).  The PR was opened 2026-05-19,
  after v0.21.0 (out by 2026-05-21, issue #43308): applied from 0.22.
* ``vllm/v1/kv_cache_interface.py`` @001cabc1 ``SlidingWindowSpec.max_memory_usage_bytes``: ``cdiv(min(window - 1 +
  max_num_batched_tokens, max_model_len), block) + 1`` pages -- the raised value reaches the sliding groups.

Run: ``HF_HUB_OFFLINE=1 PYTHONPATH=$PWD python -m pytest -q tests/test_mm_prefix_batched_floor.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts import validate_vllm_logs as vvl  # noqa: E402
from reportgen.arch import build_spec  # noqa: E402
from reportgen.arch.build import mm_prefix_lm  # noqa: E402
from reportgen.estimate.encoder import apply_limits, batched_tokens_floor  # noqa: E402
from reportgen.matrix import estimate_one  # noqa: E402

CFG = ROOT / "tests" / "data" / "configs_2026"


def _cfg(name: str) -> dict:
    return json.loads((CFG / name).read_text())


@pytest.fixture(scope="module")
def specs():
    return {"26B": build_spec(_cfg("google--gemma-4-26B-A4B.json"), "google/gemma-4-26B-A4B"),
            "31B": build_spec(_cfg("nvidia--Gemma-4-31B-IT-NVFP4.json"), "nvidia/Gemma-4-31B-IT-NVFP4"),
            "E4B": build_spec(_cfg("google--gemma-4-E4B-it.json"), "google/gemma-4-E4B-it"),
            "g3": build_spec(vvl._config("google/gemma-3-12b-it"), "google/gemma-3-12b-it")}


def test_prefix_lm_from_the_config_fields(specs):
    assert [specs[k].mm_prefix_lm for k in ("26B", "31B", "E4B", "g3")] == [True, True, False, True]
    # the field, not the model name: E4B's config with "vision" is a prefix LM, 26B's with null is not
    e4b, g26 = _cfg("google--gemma-4-E4B-it.json"), _cfg("google--gemma-4-26B-A4B.json")
    e4b["text_config"]["use_bidirectional_attention"] = "vision"
    g26["text_config"]["use_bidirectional_attention"] = None
    assert mm_prefix_lm(e4b) and not mm_prefix_lm(g26)
    assert mm_prefix_lm({"model_type": "llava", "is_mm_prefix_lm": True})
    assert not mm_prefix_lm({"model_type": "llava"}) and mm_prefix_lm({"model_type": "paligemma"})


def test_floor_is_the_largest_item_of_every_supported_modality(specs):
    s = specs["26B"]
    assert s.mm_item_tokens_by_modality == {"image": 280, "video": 2496}
    assert batched_tokens_floor(s, "0.25.1", None) == 2496
    assert batched_tokens_floor(s, "0.22.0", None) == 2496
    assert batched_tokens_floor(s, "0.21.0", None) == 0          # before PR #43051
    assert batched_tokens_floor(s, "0.25.1", 2048) == 0          # set by hand: never raised
    # a video limit of 0 does not lower it (supported_mm_limits, not the limits); text only: not a prefix LM
    assert batched_tokens_floor(apply_limits(s, {"video": 0}), "0.25.1", None) == 2496
    assert batched_tokens_floor(apply_limits(s, {"image": 0, "video": 0}), "0.25.1", None) == 0
    assert batched_tokens_floor(specs["E4B"], "0.25.1", None) == 0
    assert batched_tokens_floor(specs["g3"], "0.25.1", None) == 256  # below every GPU default: no change


@pytest.mark.parametrize("mem, version, job_t, expect", [
    (44.42, "0.25.1", None, 2496),      # L40S: 2,048 default raised
    (80.0, "0.25.1", None, 8192),       # >= 70 GiB: 8,192 already holds the item
    (44.42, "0.21.0", None, 2048),      # before the PR (vLLM refuses the start: tests/test_mm_prefix_unchunked.py)
    (44.42, "0.25.1", 4096, 4096),      # the job's value is kept
])
def test_estimate_uses_the_raised_value(specs, mem, version, job_t, expect):
    r = estimate_one(specs["26B"], mem, model="google/gemma-4-26B-A4B", max_model_len=32768,
                     vllm_version=version, max_num_batched_tokens=job_t, weights_as="fp8")
    assert r["max_num_batched_tokens"] == expect


def test_e4b_and_gemma3_keep_the_gpu_default(specs):
    for k in ("E4B", "g3"):
        r = estimate_one(specs[k], 44.42, model=k, max_model_len=16384, vllm_version="0.25.1")
        assert r["max_num_batched_tokens"] == 2048


def _scored(rid: str) -> dict:
    case = vvl.make_case(next(r for r in vvl.load_rows() if r["row_id"] == rid))
    return vvl.compare(case, vvl.predict(case))


def test_row164_reproduced_by_the_rule():
    """Gemma-4-26B-A4B fp8, 0.25.1, L40S, defaults: was KV +0.30 %, tokens +7.33 % (2,048 batched tokens);
    the raised 2,496 gives 221 blocks a sliding group and the logged 9.81x (KV +0.15 %, tokens +0.12 % since the
    encoder term's refit, branch towerpeak; +0.06 / +0.03 % before)."""
    r = _scored("164")
    assert abs(r["kv_err"]) <= 0.5 and abs(r["tok_err"]) <= 0.5, (r["kv_err"], r["tok_err"])
    assert r["conc_pred"] == pytest.approx(9.81, rel=0.005)


@pytest.mark.parametrize("rid", ["165", "168", "169"])
def test_other_gemma4_rows_unmoved(rid):
    """E4B (165 / 168: not a prefix LM) and 31B at a set 8,192 (169) get no floor, so the rule leaves their figures
    as they are: the same prediction with the floor forced off, and within 1 % of their logs (tokens -0.13 / +0.74 /
    -0.04 % after the encoder refit of branch towerpeak)."""
    case = vvl.make_case(next(r for r in vvl.load_rows() if r["row_id"] == rid))
    assert batched_tokens_floor(case.spec, case.matrix.vllm_version, case.matrix.max_num_batched_tokens) == 0
    r = _scored(rid)
    assert abs(r["tok_err"]) <= 1.0, r["tok_err"]
