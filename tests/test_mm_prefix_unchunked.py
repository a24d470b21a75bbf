"""A multimodal prefix LM whose largest item exceeds max_num_batched_tokens: vLLM refuses to start (issue 10).

Read from vLLM (search tool):
* ``vllm/platforms/cuda.py`` @002db495 ``CudaPlatformBase.check_and_update_config``: ``model_config.is_mm_prefix_lm
  and scheduler_config.is_multimodal_model and not disable_chunked_mm_input`` -> "Forcing --disable_chunked_mm_input
  for models with multimodal-bidirectional attention"; ``disable_chunked_mm_input = True``.
* ``vllm/v1/core/encoder_cache_manager.py`` @003ad86e (and @51c7cf7d) ``compute_mm_encoder_budget``: no active
  modality (every limit 0) -> ``return 0, 0`` before any check; else ``max_tokens_per_mm_item`` = the max over the
  active modalities, and ``disable_chunked_mm_input and max_tokens_per_mm_item > max_num_batched_tokens`` ->
  ValueError "Chunked MM input disabled but max_tokens_per_mm_item (2496) is larger than max_num_batched_tokens
  (2048). Please increase max_num_batched_tokens." (vllm-project/recipes #441; vLLM issue #42687 on 0.20.0).  The
  check is still there after PR #43051, which raises only a *defaulted* value (``engine/arg_utils.py``,
  ``orig_max_num_batched_tokens is None``): a value set below the item still fails, in every version.
* Gemma 4 is a prefix LM only from vLLM PR #40534 (registers gemma4 in ``MM_PREFIX_LM_MODELS``; opened 2026-04-21,
  after issue #40106 of 2026-04-17 "vLLM's Gemma4 implementation silently ignores the flag"): 0.19 served it causally,
  with no forcing -- row 52 (26B-A4B, ~0.19, A100 at the 2,048 default, 2026-04-17) started; 0.20.0 refuses
  (issue #42687).  ``encoder.PREFIX_LM_SINCE``.

Run: ``HF_HUB_OFFLINE=1 PYTHONPATH=$PWD python -m pytest -q tests/test_mm_prefix_unchunked.py``.
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
from reportgen.estimate.encoder import UNCHUNKED_REASON, apply_limits, unchunked_item, unchunked_items  # noqa: E402
from reportgen.job import Matrix  # noqa: E402
from reportgen.matrix import GpuLike, ModelEntry, estimate_one, evaluate_matrix  # noqa: E402

CFG = ROOT / "tests" / "data" / "configs_2026"


@pytest.fixture(scope="module")
def specs():
    def b(name, model):
        return build_spec(json.loads((CFG / name).read_text()), model)
    return {"26B": b("google--gemma-4-26B-A4B.json", "google/gemma-4-26B-A4B"),
            "31B": b("nvidia--Gemma-4-31B-IT-NVFP4.json", "nvidia/Gemma-4-31B-IT-NVFP4"),
            "E4B": b("google--gemma-4-E4B-it.json", "google/gemma-4-E4B-it")}


def _one(spec, mem=44.42, version="0.21.0", t=None, **kw):
    return estimate_one(spec, mem, model="m", max_model_len=32768, vllm_version=version,
                        max_num_batched_tokens=t, weights_as="fp8", **kw)


def test_item_and_message(specs):
    s = specs["26B"]
    assert unchunked_item(s) == 2496 and unchunked_items(s) == "image 280, video 2496"
    assert unchunked_item(specs["31B"]) == 2496
    assert unchunked_item(specs["E4B"]) == 0 and unchunked_items(specs["E4B"]) is None   # not a prefix LM
    # video limited to 0: the active item is the 280-token image (compute_mm_encoder_budget: active modalities)
    assert unchunked_item(apply_limits(s, {"video": 0})) == 280
    assert unchunked_item(apply_limits(s, {"image": 0, "video": 0})) == 0                  # text only
    r = _one(s)
    assert r["status"] == "invalid_layout"
    assert r["reason"] == UNCHUNKED_REASON.format(2496, 2048, 2496, 2048, "image 280, video 2496")
    assert ("Chunked MM input disabled but max_tokens_per_mm_item (2496) is larger than max_num_batched_tokens "
            "(2048)") in r["reason"] and "--max-num-batched-tokens >= 2496" in r["reason"]
    assert "--limit-mm-per-prompt 0" in r["reason"]


@pytest.mark.parametrize("mem, version, t, status_invalid, batched", [
    (44.42, "0.21.0", None, True, 2048),    # before PR #43051: the small-GPU default 2,048 < 2,496 -> refused
    (44.42, "0.20.0", None, True, 2048),
    (44.42, "0.19.1", None, False, 2048),   # Gemma 4 not yet a prefix LM (PR #40534): served causally, starts
    (44.42, "0.19.1", 1024, False, 1024),
    (44.42, "0.22.0", None, False, 2496),   # 0.22+: the defaulted value is raised to the item first
    (44.42, "0.25.1", None, False, 2496),
    (80.0, "0.21.0", None, False, 8192),    # >= 70 GiB: the 8,192 default holds the item in any version
    (44.42, "0.25.1", 2048, True, 2048),    # a value *set* below the item: still refused after the PR
    (80.0, "0.25.1", 2495, True, 2495),
    (44.42, "0.21.0", 2496, False, 2496),   # set to the item: starts
])
def test_rule_per_version(specs, mem, version, t, status_invalid, batched):
    r = _one(specs["26B"], mem, version, t)
    assert r["max_num_batched_tokens"] == batched
    assert (r["status"] == "invalid_layout") is status_invalid, (r["status"], r["reason"])
    if status_invalid:
        assert f"max_num_batched_tokens ({batched})" in r["reason"]
    else:
        assert r["status"] in ("fits", "tight", "no_fit") and "Chunked MM" not in (r["reason"] or "")


def test_limits(specs):
    s = specs["26B"]
    # video 0: the 280-token image fits 2,048 -> starts (vLLM 0.21 with --limit-mm-per-prompt video=0)
    assert _one(apply_limits(s, {"video": 0}))["status"] != "invalid_layout"
    # text only (every modality 0): no encoder budget, no check -- even at a tiny set value
    assert _one(apply_limits(s, {"image": 0, "video": 0}), t=1024)["status"] != "invalid_layout"
    # image 0 keeps the 2,496 video: still refused
    r = _one(apply_limits(s, {"image": 0}))
    assert r["status"] == "invalid_layout" and "(2496)" in r["reason"]
    # video 0 but a set value below the image item: refused at the image's 280
    r = _one(apply_limits(s, {"video": 0}), version="0.25.1", t=256)
    assert r["status"] == "invalid_layout" and "max_tokens_per_mm_item (280)" in r["reason"]
    assert "items: image 280)" in r["reason"]


def test_non_prefix_model_unaffected(specs):
    for v, t in (("0.21.0", None), ("0.25.1", 1024)):
        r = estimate_one(specs["E4B"], 44.42, model="e4b", max_model_len=16384, vllm_version=v,
                         max_num_batched_tokens=t)
        assert r["status"] != "invalid_layout", r["reason"]


def test_matrix_per_gpu_class(specs):
    """The vectorised path: one 0.21 matrix over a small and a large GPU -- only the small GPU's cells refused."""
    small = GpuLike(id="l40s", name="L40S", usable_memory_gib=44.42)      # < 70 GiB: 2,048 default
    large = GpuLike(id="h100", name="H100", usable_memory_gib=79.19)      # 8,192 default
    mx = Matrix(tp=[1, 2], pp=[1], dp=[1], ep=[False], weights_as=["fp8"], kv_cache_dtype=["auto"],
                max_model_len=[8192, 32768], concurrency=[1], gpu_memory_utilization=[0.9], vllm_version="0.21.0")
    df = evaluate_matrix([ModelEntry("g26", specs["26B"]), ModelEntry("e4b", specs["E4B"])], [small, large], mx)
    chunk = df["reason"].fill_null("").str.contains("Chunked MM input disabled")
    bad = df.filter(chunk)
    assert set(bad["model"]) == {"g26"} and set(bad["gpu"]) == {small.id}
    assert (bad["status"] == "invalid_layout").all() and bad.height == 4    # 2 TP x 2 lengths
    assert not df.filter((df["model"] == "g26") & (df["gpu"] == large.id))["reason"].fill_null("").str.contains(
        "Chunked").any()


@pytest.mark.parametrize("rid", ["52", "54", "164", "165", "168", "169"])
def test_gemma4_log_rows_still_start(rid):
    """The logged Gemma-4 starts did start: 52 (26B, ~0.19, A100 80 GB: 8,192 default), 54 (31B, set 4,096),
    164 (26B, 0.25.1, L40S: raised to 2,496), 165 / 168 (E4B: not a prefix LM), 169 (31B, set 8,192)."""
    row = next(r for r in vvl.load_rows() if r["row_id"] == rid)
    case = vvl.make_case(row)
    pred = vvl.predict(case)
    assert "Chunked MM" not in json.dumps(pred, default=str)


def test_reportgen_estimate_cli():
    """``reportgen estimate`` gives the same verdict (and ``--limit-mm-per-prompt video=0`` lifts it)."""
    import contextlib
    import io

    from reportgen.cli import main

    def run(*extra):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            main(["estimate", str(CFG / "google--gemma-4-26B-A4B.json"), "--json", "--offline",
                  "--gpu-memory-gib", "80", "--weights-as", "fp8", "--max-model-len", "32768",
                  "--max-num-batched-tokens", "2048", *extra])
        return json.loads(out.getvalue())

    d = run("--vllm-version", "0.25.1")
    assert d["status"] == "invalid_layout"
    assert d["reason"] == UNCHUNKED_REASON.format(2496, 2048, 2496, 2048, "image 280, video 2496")
    assert run("--vllm-version", "0.25.1", "--limit-mm-per-prompt", "video=0")["status"] != "invalid_layout"
    assert run("--vllm-version", "0.19.1")["status"] != "invalid_layout"
