"""vLLM 0.34: the extensible KV cache (sized after warm-up and graph capture), utilization 1.0 and block size 64 by
default -- the newest profile and reportgen's default.

Read in the release sdists (/work/vllm_src/vllm-X.Y.Z):
- 0.34.0 v1/worker/extensible_kv_cache.py:592-618 ``measure_kv_cache_bytes``: ``available = min(requested - non_kv_used,
  headroom - margin) - max(T, torch reservation growth)`` with ``non_kv_used = init_free - free - committed``,
  ``headroom = free + committed``, ``margin = max(KV_CACHE_MARGIN_FLOOR_BYTES, 0.75 T)`` (:64-65, 1 GiB on CUDA);
- 0.34.0 v1/worker/gpu/model_runner.py:1121-1125: no graph estimate with the extensible cache (the graphs are
  captured before the sizing, gpu_worker.py:1094-1097, and measured as non-KV memory);
- 0.34.0 config/cache.py:185 ``DEFAULT_BLOCK_SIZE = 64`` (16 in 0.33.0 config/cache.py:185), :494-500 utilization
  1.0 with the extensible cache else 0.92, :395-406 on by default; config/vllm.py:3203-3207 off with
  ``kv_cache_memory_bytes``, an explicit request then raises (:3262-3263);
- 0.32.0 / 0.33.0 gpu_worker.py ``determine_available_memory``: the 0.29-0.31 budget (0.29 profile).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reportgen.arch import build_spec
from reportgen.catalog import load_catalog
from reportgen.estimate import overheads as oh
from reportgen.estimate.profiles import NEWEST_READ, PROFILES, profile_for
from reportgen.job import (DEFAULT_VLLM_VERSION, JobError, Matrix, extensible_kv_cache, extensible_kv_cache_problem,
                           parse_matrix, resolved_utilizations)
from reportgen.matrix import estimate_one
from reportgen.vllm_args import parse_vllm_command
from sdist_support import SRC, needs_sdists

BUNDLED = Path(__file__).resolve().parents[1] / "reportgen/sources/bundled"
LLAMA = build_spec(json.loads((BUNDLED / "meta-llama--Llama-3.1-8B-Instruct.json").read_text()))
H100 = load_catalog().get("H100")


def _fix(r: dict, graph_share: float = 1.0) -> float:
    """The non-KV charge of a dense one-GPU 0.29+ cell: weights + activation + non-torch + graphs -- captured, in
    full, with the extensible cache (0.34); ``graph_share`` x captured when the budget takes the profile's graph
    estimate instead (0.29-0.33: ``graph_estimate_scale``, ``S033``)."""
    return r["weights_gib"] + r["activation_gib"] + r["non_torch_gib"] + graph_share * r["cuda_graph_gib"]


S033 = profile_for("0.33")[0].graph_estimate_scale     # 0.29-0.33: the estimate is 1.48 x MRV2's capture


def test_0_34_is_the_newest_profile_and_the_default():
    p, note = profile_for("0.34.0")
    assert (p.name, p.first, p.default_block_size, p.extensible_kv_cache) == ("0.34", (0, 34), 64, True)
    assert p is PROFILES[-1] and DEFAULT_VLLM_VERSION == "0.34" and NEWEST_READ == (0, 34) and note == ""
    old = profile_for("0.33.0")[0]
    assert (old.name, old.default_block_size, old.extensible_kv_cache) == ("0.29", 16, False)
    # 0.34 keeps the 0.29 terms (no 0.32-0.34 log with KV figures to refit them on)
    assert (p.graph_estimate_scale, p.nt_single, p.mrv2) == (old.graph_estimate_scale, old.nt_single, old.mrv2)
    assert "newer than the newest release read" in profile_for("0.35")[1]


def test_defaults_resolve_per_release():
    assert resolved_utilizations(Matrix(vllm_version="0.34")) == [1.0]
    assert resolved_utilizations(Matrix(vllm_version="0.33")) == [0.92]
    assert resolved_utilizations(Matrix(vllm_version="0.34", enable_extensible_kv_cache=False)) == [0.92]
    assert resolved_utilizations(Matrix(vllm_version="0.34", kv_cache_memory_bytes=8 << 30)) == [0.92]
    assert resolved_utilizations(Matrix(vllm_version="0.34", gpu_memory_utilization=[0.9])) == [0.9]
    assert extensible_kv_cache(Matrix(vllm_version="0.34")) and not extensible_kv_cache(Matrix(vllm_version="0.33"))


def test_extensible_kv_cache_refused_where_vllm_refuses_it():
    assert "0.34" in extensible_kv_cache_problem(Matrix(vllm_version="0.33", enable_extensible_kv_cache=True))
    assert "kv_cache_memory_bytes overrides" in extensible_kv_cache_problem(
        Matrix(vllm_version="0.34", enable_extensible_kv_cache=True, kv_cache_memory_bytes=8 << 30))
    with pytest.raises(JobError, match="enable_extensible_kv_cache: vLLM 0.31 has no extensible KV cache"):
        parse_matrix({"vllm_version": "0.31", "enable_extensible_kv_cache": True})
    assert parse_matrix({"enable_extensible_kv_cache": False}).enable_extensible_kv_cache is False


def test_extensible_budget_on_an_h100():
    """Llama-3.1-8B, one H100 (79.19 GiB as vLLM sees it), defaults.  0.33: 0.92 x 79.19 - non-KV, the graphs as
    the profile's estimate (1.48 x the capture).  0.34: util 1.0, so the device headroom binds: 79.19 - 0.5 (start-up
    context, overheads.CONTEXT_GIB) - non-KV with the graphs as captured - max(1, 0.75 T) = 0.08 x 79.19 - 0.5 -
    0.75 x 1.836 + 0.48 x 0.33 = 4.62 GiB more KV (+8.3 %) -- what vLLM's extensible cache gives back of the 0.92
    headroom, and the estimate's over-count of the capture.  T = 1.836 GiB: from 0.33 MRV2's profile-run sampler
    runs a full-pipeline pass (bf16 logits + 12 B a logit, tests/test_mrv2_sampler_033.py), so 0.75 T is above the
    1 GiB floor (0.95 GiB of forward and a 1 GiB floor before it was priced: 4.99)."""
    a = estimate_one(LLAMA, H100, max_model_len=8192, vllm_version="0.33")
    b = estimate_one(LLAMA, H100, max_model_len=8192, vllm_version="0.34")
    g = b["gpu_memory_gib"]
    assert g == pytest.approx(79.19) and oh.CONTEXT_GIB == 0.5
    assert (a["gpu_memory_utilization"], a["block_size"]) == (0.92, 16)
    assert (b["gpu_memory_utilization"], b["block_size"]) == (1.0, 64)
    assert _fix(a) == pytest.approx(_fix(b)) and S033 == 1.48
    assert a["kv_cache_gib"] == pytest.approx(0.92 * g - _fix(a, S033))
    margin = max(1.0, 0.75 * b["activation_gib"])
    assert margin == pytest.approx(0.75 * 1.8358, abs=1e-3)
    assert b["kv_cache_gib"] == pytest.approx(g - 0.5 - _fix(b) - margin)
    assert b["kv_cache_gib"] - a["kv_cache_gib"] == pytest.approx(0.08 * g - 0.5 - margin
                                                                   + (S033 - 1) * b["cuda_graph_gib"])
    assert b["kv_cache_gib"] - a["kv_cache_gib"] == pytest.approx(4.62, abs=0.01)
    # KV tokens: whole 64-token blocks of 128 KiB a token (32 layers x 8 KV heads x 128 x 2 x 2 B)
    per_token = 32 * 8 * 128 * 2 * 2
    assert b["kv_cache_tokens"] == int(b["kv_cache_gib"] * 2**30 // (64 * per_token)) * 64
    assert a["kv_cache_tokens"] == int(a["kv_cache_gib"] * 2**30 // (16 * per_token)) * 16


def test_explicit_utilization_on_0_34():
    """An explicit 0.92 leaves more than the margin free (0.08 x 79.19 = 6.3 GiB > 1.5): the 0.29-0.33 budget (block
    size aside) with the graphs as captured, not as the 0.29-0.33 estimate (1.48 x the capture; 0.34 with the
    extensible cache off takes that estimate, as 0.33 does).  0.99 on an H100 is bound by the device headroom, and -- sized from measured memory -- is not the
    0.33 'tight' cell (0.79 GiB left outside the budget for 0.5 GiB of context)."""
    old = estimate_one(LLAMA, H100, max_model_len=8192, vllm_version="0.33")
    at92 = estimate_one(LLAMA, H100, max_model_len=8192, vllm_version="0.34", gpu_memory_utilization=0.92)
    off = estimate_one(LLAMA, H100, max_model_len=8192, vllm_version="0.34", enable_extensible_kv_cache=False)
    assert off["kv_cache_gib"] == pytest.approx(old["kv_cache_gib"])
    assert at92["kv_cache_gib"] == pytest.approx(old["kv_cache_gib"] + (S033 - 1) * old["cuda_graph_gib"])
    assert at92["kv_cache_gib"] == pytest.approx(0.92 * 79.19 - _fix(at92))
    assert off["gpu_memory_utilization"] == 0.92
    t33 = estimate_one(LLAMA, H100, max_model_len=8192, vllm_version="0.33", gpu_memory_utilization=0.99)
    t34 = estimate_one(LLAMA, H100, max_model_len=8192, vllm_version="0.34", gpu_memory_utilization=0.99)
    assert t33["status"] == "tight" and "near the out-of-memory boundary" in t33["reason"]
    assert t34["status"] == "fits"
    # the margin: max(1 GiB, 0.75 T), T = 1.836 GiB with 0.33+'s sampler pass (tests/test_mrv2_sampler_033.py)
    assert t34["kv_cache_gib"] == pytest.approx(79.19 - 0.5 - _fix(t34) - 0.75 * t34["activation_gib"])


def test_margin_binds_on_a_small_gpu():
    """24 GiB, util 0.98: 0.98 x 24 - non-KV (14.99 weights + 0.46 activation + 0.26 non-torch + 0.29 graphs, MRV2's
    capture at max_num_seqs 256) = 7.52 GiB, but the device headroom less the 1 GiB floor leaves 24 - 0.5 - non-KV -
    1 = 6.50: the margin decides.  The activation is 0.33+'s sampler pass: 256 x 128256 x (2 + 12) B + the kept
    hidden states 0.03 (0.24, the forward at 2048 tokens, before it was priced: 6.72)."""
    r = estimate_one(LLAMA, 24.0, max_model_len=8192, vllm_version="0.34", gpu_memory_utilization=0.98)
    assert r["kv_cache_gib"] == pytest.approx(min(0.98 * 24 - _fix(r), 24 - 0.5 - _fix(r) - 1.0))
    assert r["kv_cache_gib"] == pytest.approx(24 - 0.5 - _fix(r) - 1.0)
    assert 6.4 < r["kv_cache_gib"] < 6.6


def test_block_size_64_by_default_and_the_users_kept():
    r = estimate_one(LLAMA, H100, max_model_len=8192, vllm_version="0.34", block_size=16)
    assert r["block_size"] == 16 and r["kv_cache_tokens"] % 16 == 0
    assert estimate_one(LLAMA, H100, max_model_len=8192, vllm_version="0.34")["block_size"] == 64


def test_hybrid_attention_block_aligned_to_64_on_0_34():
    """Qwen3-Next at TP 2 (row 71 logs 544 = 16 x cdiv(state page, 16 x attention page of a token), so the state
    page spans 529-544 attention tokens): vLLM 0.20+ aligns to max(16, block_size) (platforms/interface.py
    ``_align_hybrid_block_size``; 0.34.0 :1078-1084), so 0.34's 64 gives 64 x cdiv(544-ish, 64) = 576.  0.33 keeps
    block size 16 but, on a GPU running FlashInfer's GDN prefill (a GPU given by memory only counts as the H100),
    aligns to lcm(16, 64) for the prefill checkpoints (vllm 0.33.0 sdist platforms/interface.py:1089-1094;
    tests/test_gdn_checkpoint.py): 576 too; 0.10.2 has neither rule."""
    spec = build_spec(json.loads((BUNDLED / "Qwen--Qwen3-Next-80B-A3B-Instruct.json").read_text()))
    # 0.10.2: row 71's release (Qwen3NextForCausalLM is first listed in 0.10.2: "0.10" = 0.10.0 cannot load it)
    bs = {v: estimate_one(spec, 141.0, tp=2, max_model_len=262_144, vllm_version=v)["block_size"]
          for v in ("0.10.2", "0.33", "0.34")}
    assert bs == {"0.10.2": 544, "0.33": 576, "0.34": 576}


def test_pasted_command_line_flag():
    cmd = parse_vllm_command("vllm serve meta-llama/Llama-3.1-8B-Instruct --no-enable-extensible-kv-cache")
    assert cmd.engine["enable_extensible_kv_cache"] is False
    cmd = parse_vllm_command("vllm serve meta-llama/Llama-3.1-8B-Instruct --enable-extensible-kv-cache")
    assert cmd.engine["enable_extensible_kv_cache"] is True


def test_estimate_json_states_the_sizing_used(capsys):
    from reportgen.cli import main

    path = str(BUNDLED / "meta-llama--Llama-3.1-8B-Instruct.json")
    for args, used, util in (((), True, 1.0), (("--no-enable-extensible-kv-cache",), False, 0.92),
                             (("--vllm-version", "0.33"), False, 0.92),
                             (("--kv-cache-memory-bytes", "20G"), False, 0.92)):
        main(["estimate", path, "--gpu", "H100", "--json", "--offline", *args])
        out = json.loads(capsys.readouterr().out)
        assert out["engine"]["extensible_kv_cache_used"] is used, args
        assert out["gpu_memory_utilization"] == util, args


def test_default_utilization_per_release():
    """vLLM's unset --gpu-memory-utilization: 0.9 in 0.10.0 - 0.19.1 (config.py / config/cache.py
    ``gpu_memory_utilization`` default), 0.92 from 0.20.0 (config/cache.py:66), 1.0 with 0.34's extensible cache."""
    assert resolved_utilizations(Matrix(vllm_version="0.10")) == [0.9]
    assert resolved_utilizations(Matrix(vllm_version="0.19.1")) == [0.9]
    assert resolved_utilizations(Matrix(vllm_version="0.20")) == [0.92]
    assert resolved_utilizations(Matrix(vllm_version="0.33")) == [0.92]
    assert resolved_utilizations(Matrix(vllm_version="0.34")) == [1.0]


@needs_sdists
def test_default_utilization_read_from_the_sdists():
    import re
    src = SRC

    def default(v):
        for rel in ("vllm/config/cache.py", "vllm/config.py"):
            p = src / f"vllm-{v}" / rel
            if p.exists():
                m = re.search(r"gpu_memory_utilization: float = (?:Field\(default=)?([0-9.]+)", p.read_text())
                if m:
                    return float(m[1])
    assert default("0.10.0") == default("0.11.0") == default("0.19.1") == 0.9
    assert default("0.20.0") == default("0.33.0") == 0.92
