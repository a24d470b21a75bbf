"""The estimator on hybrid (state-layer) specs: vectorised cells equal the scalar vLLM block arithmetic,
state memory is never priced as zero, layouts that split state heads unevenly are invalid."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import pytest

from reportgen.arch import build_spec
from reportgen.arch.spec import AttentionKind, LayerKV
from reportgen.arch.state import StateGeometry
from reportgen.estimate import hybrid
from reportgen.estimate.kvcache import kv_groups, max_model_len_fit_scalar
from reportgen.job import Matrix
from reportgen.matrix import GpuLike, ModelEntry, estimate_one, evaluate_matrix

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "reportgen" / "sources" / "bundled"
GIB = 2**30


@pytest.fixture(scope="module")
def qwen35_9b():
    composite = json.loads((BUNDLED / "RedHatAI--Qwen3.5-9B-quantized.w4a16.json").read_text())
    text = copy.deepcopy(composite["text_config"])
    return build_spec(text)


@pytest.fixture(scope="module")
def llama():
    return build_spec(json.loads((BUNDLED / "meta-llama--Llama-3.1-8B-Instruct.json").read_text()))


def test_block_size_rule_by_hand(qwen35_9b):
    # TP1 bf16 KV: attention token page 4 x 256 x 2 x 2 = 4096 B; GDN state 3 x 8192 x 2 + 32 x 128 x 128 x 4
    state = 3 * 8192 * 2 + 32 * 128 * 128 * 4
    assert hybrid.hybrid_block_size(state, 4096, 16, False) == 16 * -(-state // (16 * 4096)) == 528
    assert hybrid.hybrid_block_size(state, 4096, 1024, False) == 1024          # a larger --block-size is kept
    assert hybrid.hybrid_block_size(state, 4096, 530, False) == 530            # unaligned but >= a state page
    assert hybrid.hybrid_block_size(state, 576, 16, True) % 64 == 0            # MLA aligns to 64


@pytest.mark.parametrize("version, pc, mode", [("0.10", None, "none"), ("0.27", None, "none"), ("0.28", None, "align"),
                                               ("0.16", True, "align"), ("0.30", False, "none")])
def test_prefix_caching_default_per_version(version, pc, mode):
    assert hybrid.state_cache_mode(version, pc) == mode


def test_old_token_line_before_021(qwen35_9b):
    """0.17-0.20 print ``num_blocks // n_groups x min block size`` (kv_cache_utils @001cabc1), a block multiple."""
    for version, old in (("0.20", True), ("0.19", True), ("0.21", False)):
        cell = evaluate_matrix([ModelEntry("q", qwen35_9b)], [GpuLike("g", "g", 79.2)],
                               Matrix(tp=[1], max_model_len=[16384], gpu_memory_utilization=[0.9],
                                      max_num_batched_tokens=8192, max_num_seqs=256,
                                      vllm_version=version)).row(0, named=True)
        g = kv_groups(qwen35_9b, 1, 1, "auto", 2, 16, state_conv_bytes=2, state_mode="none")
        nb = int(cell["kv_cache_gib"] * GIB // g.stage_bytes_per_block[0])
        want = (nb // g.n_groups * g.token_block if old
                else int(nb / g.blocks_per_request(16384, 8192) * 16384))
        assert cell["kv_cache_tokens"] == want, version


@pytest.mark.parametrize("tp", [1, 2, 4])
@pytest.mark.parametrize("pc", [False, True])
@pytest.mark.parametrize("m", [1024, 16384, 262144])
def test_cells_equal_scalar_block_arithmetic(qwen35_9b, tp, pc, m):
    mx = dict(tp=tp, max_model_len=m, gpu_memory_utilization=0.9, max_num_batched_tokens=8192, max_num_seqs=256,
              vllm_version="0.21")
    cell = evaluate_matrix([ModelEntry("q", qwen35_9b)], [GpuLike("g", "g", 79.2)],
                           Matrix(tp=[tp], max_model_len=[m], gpu_memory_utilization=[0.9], max_num_batched_tokens=8192,
                                  max_num_seqs=256, vllm_version="0.21", enable_prefix_caching=pc)).row(0, named=True)
    g = kv_groups(qwen35_9b, tp, 1, "auto", 2, 16, state_conv_bytes=2, state_mode="align" if pc else "none")
    nb = int(cell["kv_cache_gib"] * GIB // g.stage_bytes_per_block[0])
    assert cell["block_size"] == g.token_block
    # 0.21+ logs "GPU KV cache size" = int(max_concurrency x max_model_len) (VllmProfile.tokens_from_concurrency);
    # before, num_blocks // n_groups x min block size (test_old_token_line_before_021)
    assert cell["kv_cache_tokens"] == int(nb / g.blocks_per_request(m, 8192) * m)
    assert cell["max_concurrency"] == pytest.approx(nb / g.blocks_per_request(m, 8192))
    assert cell["max_model_len_fit"] == max_model_len_fit_scalar(g, nb, 8192, 262144)
    # 24 GDN layers on the rank, each a padded page, x 1 or 2 blocks per request
    assert cell["state_bytes_per_seq"] == 24 * g.token_block * (4 // tp) * 256 * 2 * 2 * (2 if pc else 1)
    sblocks = g.n_state * g.state_blocks
    per_req = nb // g.blocks_per_request(m, 8192)
    want = ("max_num_seqs" if per_req >= 256 else
            "state_slots" if 2 * sblocks >= g.blocks_per_request(m, 8192) else "kv_tokens")
    assert cell["concurrency_limited_by"] == want
    del mx


def test_short_context_is_state_limited(qwen35_9b):
    r = estimate_one(qwen35_9b, 79.2, max_model_len=512, max_num_seqs=100000, max_num_batched_tokens=2048,
                     gpu_memory_utilization=0.9)
    assert r["concurrency_limited_by"] == "state_slots"


def test_non_hybrid_columns(llama):
    r = estimate_one(llama, 79.2, max_model_len=8192, max_num_seqs=1024)
    # vLLM's default block size of the default release (64 from 0.34: config/cache.py:185)
    assert (r["block_size"], r["state_bytes_per_seq"], r["concurrency_limited_by"]) == (64, 0.0, "kv_tokens")
    r = estimate_one(llama, 79.2, max_model_len=512, max_num_seqs=8)
    assert r["concurrency_limited_by"] == "max_num_seqs"


def test_state_heads_not_divisible_by_tp_is_invalid_layout(qwen35_9b):
    r = estimate_one(qwen35_9b, 79.2, tp=8, max_model_len=4096)
    assert r["status"] == "fits"                        # 16 key heads, 32 value heads: 8 divides both
    spec = copy.copy(qwen35_9b)
    spec.layers_kv = [replace(l, state=StateGeometry("gdn", (32, 48, 128, 128, 4))) if l.state else l
                      for l in qwen35_9b.layers_kv]
    r = estimate_one(spec, 79.2, tp=32, max_model_len=4096)
    assert r["status"] == "invalid_layout"
    assert r["reason"].startswith("num_attention_heads") or "linear_num_value_heads (48) % tp (32)" in r["reason"]
    spec.num_attention_heads = 32
    spec.num_kv_heads = 32
    r = estimate_one(spec, 79.2, tp=32, max_model_len=4096)
    assert r["status"] == "invalid_layout" and "linear_num_value_heads (48) % tp (32)" in r["reason"]


def test_state_layers_only_are_priced_attention_free(qwen35_9b):
    """No attention layer left: vLLM's attention-free path (one state group, block = max_model_len;
    tests/test_estimate_ssm.py), not a refusal."""
    spec = copy.copy(qwen35_9b)
    spec.layers_kv = [l for l in qwen35_9b.layers_kv if l.state]
    r = estimate_one(spec, 79.2, max_model_len=4096, enable_prefix_caching=False)
    assert r["status"] == "fits" and r["block_size"] == 4096
    assert r["kv_cache_tokens"] == int(r["max_concurrency"]) * 4096


@pytest.mark.parametrize("layers_edit, words", [
    (lambda ls: [LayerKV(AttentionKind.STATE) if l.state else l for l in ls], "cannot be priced"),
    (lambda ls: [replace(l, state=StateGeometry("gdn", (16, 64, 128, 128, 4))) if i == 0 else l
                 for i, l in enumerate(ls)], "different state sizes"),
])
def test_unpriceable_state_is_unsupported_never_zero(qwen35_9b, layers_edit, words):
    spec = copy.copy(qwen35_9b)
    spec.layers_kv = layers_edit(qwen35_9b.layers_kv)
    r = estimate_one(spec, 79.2, max_model_len=4096)
    assert r["status"] == "unsupported" and words in r["reason"]
    assert r["kv_cache_tokens"] is None and r["max_concurrency"] is None
