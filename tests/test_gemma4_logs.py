"""Gemma 4 against its two public start-up logs (issue 12: rows 52 and 54 of tests/data/vllm_logs.csv; row 53 is
the same blog's gpt-oss-20b start).

Read from vLLM (search-tool read_file):
* ``vllm/v1/core/kv_cache_utils.py`` @001cabc1: hybrid layers grouped by type, ``group_size`` = the fewer
  layers of a type (10 full of Gemma-4-31B's 60 -> 5 sliding groups + 1 full), pages unified by raising the
  smaller page's block size, one pool of ``group_size`` tensors of ``num_blocks x page``;
  ``_max_memory_usage_bytes_from_groups`` = ``group_size x page x sum of each group's blocks per request``;
  the 0.17-0.20 "GPU KV cache size" line = ``num_blocks // n_groups x min block size``.
* ``vllm/v1/kv_cache_interface.py`` @001cabc1: ``FullAttentionSpec.max_memory_usage_bytes`` =
  ``cdiv(max_model_len, block) x page``; ``SlidingWindowSpec`` = ``cdiv(min(window - 1 + max_num_batched_tokens,
  max_model_len), block) + 1`` pages.
* vLLM PR #38364 / issue #40691: from 0.21 the line prints ``int(max_concurrency x max_model_len)``
  (``VllmProfile.tokens_from_concurrency``).
* ``vllm/model_executor/models/gemma4.py`` @eee7972f: a full layer with ``attention_k_eq_v`` has
  ``num_global_key_value_heads`` heads of ``global_head_dim`` and still caches K and V.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from reportgen.arch import build_spec
from reportgen.estimate.kvcache import kv_groups
from reportgen.estimate.profiles import profile_for

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import validate_vllm_logs as vvl  # noqa: E402

CFG = ROOT / "tests" / "data" / "configs_2026"
GIB = 1 << 30


def _case(row_id: str):
    row = next(r for r in vvl.load_rows() if r["row_id"] == row_id)
    return row, vvl.make_case(row)


@pytest.fixture(scope="module")
def g31():
    cfg = json.loads((CFG / "nvidia--Gemma-4-31B-IT-NVFP4.json").read_text())
    return build_spec(cfg, "nvidia/Gemma-4-31B-IT-NVFP4")


def test_31b_fp8_kv_groups_by_hand(g31):
    """50 sliding layers: 16 heads x 256 x (K, V) x 1 B (fp8 kv_cache_scheme) = 8192 B a token, page 131072
    at block 16; 10 full layers: 4 heads x 512 x 2 x 1 = 4096 B -> block 32 for the same page."""
    g = kv_groups(g31, 1, 1, "fp8_e4m3", 1, 16)
    assert (g.n_groups, g.n_full, g.bs_full, g.n_slide, g.bs_slide, g.window) == (6, 1, 32, 5, 16, 1024)
    assert g.stage_bytes_per_block == (10 * 131072,)          # group_size 10 tensors x one page
    # one 262,144-token request at max_num_batched_tokens 4096
    assert g.blocks_per_request(262144, 4096) == 262144 // 32 + 5 * (-(-(1023 + 4096) // 16) + 1) == 9797


def test_row54_concurrency_needs_more_than_an_h100(g31):
    """5.97 requests of 9,797 blocks of 1.25 MiB are 71.34 GiB of KV: more than an 80 GB H100's whole budget
    (0.9 x 79.19 = 71.27 GiB) before the 31.18 GiB of weights -- the logged device is not an H100 80 GB."""
    g = kv_groups(g31, 1, 1, "fp8_e4m3", 1, 16)
    need = 5.965 * g.blocks_per_request(262144, 4096) * g.stage_bytes_per_block[0] / GIB
    assert need == pytest.approx(5.965 * 9797 * 1.25 / 1024)     # 71.34 GiB
    assert need > 0.9 * 79.19


def test_row54_reproduced_at_the_gb10_total_and_listed_only():
    row, case = _case("54")
    assert case is not None and case.memory_gib == 119.63 and case.matrix.vllm_version == "0.21"
    assert case.matrix.gpu_memory_utilization == [0.9] and case.matrix.max_num_batched_tokens == 4096
    assert vvl.interference(row)                               # UNSCORED: the total comes from the row itself
    p = vvl.predict(case)
    assert p["kv_cache_dtype_used"] == "fp8_e4m3"
    assert p["weights_gib"] == pytest.approx(31.18, rel=0.01)
    assert p["max_concurrency"] == pytest.approx(5.97, rel=0.01)
    # 0.21+: "GPU KV cache size" = int(max_concurrency x max_model_len), not a block multiple
    assert p["kv_cache_tokens"] == int(p["max_concurrency"] * 262144)
    assert p["kv_cache_tokens"] == pytest.approx(1_563_739, rel=0.01)


def test_row52_scored_within_one_percent():
    """A100 80GB (vLLM treats every A100 as a small GPU: 2048 batched tokens), 0.19, --enforce-eager: the log
    leaves 0.9 x 79.25 - 48.5 - 21.5 = 1.33 GiB for activation + non-torch."""
    row, case = _case("52")
    assert case is not None and case.memory_gib == 79.25 and not vvl.interference(row)
    p = vvl.predict(case)
    assert p["max_num_batched_tokens"] == 2048 and p["cuda_graph_gib"] == 0
    assert p["weights_gib"] == pytest.approx(48.5, rel=0.01)
    assert p["kv_cache_gib"] == pytest.approx(21.5, rel=0.01)
    assert p["activation_gib"] + p["non_torch_gib"] == pytest.approx(0.9 * 79.25 - 48.5 - 21.5, abs=0.1)


def test_26b_has_no_per_layer_embedding_and_no_audio_tower():
    cfg = json.loads((CFG / "google--gemma-4-26B-A4B.json").read_text())
    spec = build_spec(cfg, "google/gemma-4-26B-A4B")
    names = [t.name for t in spec.tensors]
    assert not any("per_layer" in n for n in names)            # hidden_size_per_layer_input 0: E2B / E4B only
    assert not any("audio" in n for n in names)                # audio_config null
    assert any(n.startswith("model.vision_tower.") for n in names)


# 0.20.1 first prints it: vllm 0.20.0 sdist v1/core/kv_cache_utils.py:1694-1697 (block multiple), 0.20.1 :1706 (branch
# patchver; it was 0.21 with the profiles on major.minor); "0.20" is the 0.20.0 release
@pytest.mark.parametrize("version, new", [("0.19", False), ("0.20", False), ("0.20.0", False), ("0.20.1", True),
                                          ("0.20.2", True), ("0.21", True), ("v0.24.0", True),
                                          ("0.25.1", True), ("0.29", True), ("v0.31.0", True), ("0.40", True),
                                          ("nonsense", True)])   # not understood / newer: the newest profile's rule
def test_token_line_rule_per_version(version, new):
    assert profile_for(version)[0].tokens_from_concurrency is new


def test_row53_same_blog_gpt_oss_scored():
    """The blog's gpt-oss-20b start on the same A100 (0.19.0, util 0.65, no --enforce-eager): 13.72 GiB of
    weights + 36.56 GiB of KV need the 80 GB card too."""
    row, case = _case("53")
    assert case is not None and case.memory_gib == 79.25 and not vvl.interference(row)
    p = vvl.predict(case)
    assert p["weights_gib"] == pytest.approx(13.72, rel=0.01)
    assert p["kv_cache_gib"] == pytest.approx(36.56, rel=0.01)


def test_catalog_a100_takes_the_small_gpu_defaults():
    """vLLM gives every A100 the small-GPU defaults ("a100" in the device name), whatever its memory: the
    catalog's A100 80GB must too, or ``reportgen estimate --gpu A100`` prices 8192 batched tokens and 1024
    sequences (row 52 then came out at 18.43 GiB of KV instead of the logged 21.5)."""
    from reportgen.catalog import load_catalog
    cat = load_catalog()
    assert not cat.get("A100").large_gpu and cat.get("H100").large_gpu
