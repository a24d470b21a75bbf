"""Budget, overheads, status and validity rules, through the 1-cell matrix (``estimate_one``)."""

from __future__ import annotations

import pytest

from reportgen.estimate import overheads as oh
from reportgen.matrix import estimate_one
from test_estimate_specs import dense_spec, moe_spec

H100 = 79.19
GIB = 2**30


def one(spec=None, **kw):
    kw.setdefault("gpu_memory_utilization", 0.95)
    kw.setdefault("vllm_version", "0.19")
    return estimate_one(spec or dense_spec(), kw.pop("mem", H100), **kw)


def test_llama_8b_h100_v019_matches_the_log():
    r = one()
    # log (rows 101-108): weights 14.99, activation 1.89, non-torch 0.25, KV 58.11 GiB, 476,016 tokens
    assert r["weights_gib"] == pytest.approx(14.99, abs=0.005)
    assert r["activation_gib"] == pytest.approx(1.89, abs=0.05)
    assert r["non_torch_gib"] == oh.NT_SINGLE == 0.25
    budget = 0.95 * H100
    assert r["kv_cache_gib"] == pytest.approx(budget - r["weights_gib"] - r["activation_gib"] - 0.25)
    assert r["kv_cache_gib"] == pytest.approx(58.11, abs=0.05)
    blocks = int(r["kv_cache_gib"] * GIB // (32 * 16 * 4096))        # 32 layers x 64 KiB pages
    assert r["kv_cache_tokens"] == blocks * 16
    assert r["kv_cache_tokens"] == pytest.approx(476_016, rel=0.002)
    assert r["max_concurrency"] == pytest.approx(blocks / 512)
    assert r["status"] == "fits" and r["worst_rank"] == "pp0"
    assert r["kv_bytes_per_token"] == 131_072
    assert r["gpus"] == 1


def test_v021_subtracts_cuda_graphs_from_the_budget():
    # 0.21 takes vLLM's graph *estimate* from the budget: the captured graph memory times the
    # estimate/actual ratio of its profile (profiles.py; fitted on the 0.19 rows printing both)
    from reportgen.estimate.profiles import profile_for

    a, b = one(), one(vllm_version="0.21")
    assert b["cuda_graph_gib"] == a["cuda_graph_gib"] > 0
    scale = profile_for("0.21")[0].graph_estimate_scale
    assert 0.5 < scale < 1.5
    assert b["kv_cache_gib"] == pytest.approx(a["kv_cache_gib"] - scale * a["cuda_graph_gib"])


def test_pp4_worst_rank_is_the_last_stage_and_tokens_follow_it():
    r = one(pp=4)
    assert r["worst_rank"] == "pp3"                         # lm_head + sampler activation
    assert r["weights_gib"] == pytest.approx(4.26, abs=0.005)
    assert r["kv_bytes_per_token"] == 8 * 4096
    blocks = int(r["kv_cache_gib"] * GIB // (8 * 16 * 4096))
    assert r["kv_cache_tokens"] == blocks * 16
    assert r["kv_cache_tokens"] == pytest.approx(2_257_264, rel=0.005)   # row 110


def test_non_torch_steps_up_with_tp():
    assert one(tp=2)["non_torch_gib"] == pytest.approx(oh.NT_COMM_BASE + 2 * oh.NT_COMM_PER_RANK)
    assert one(pp=2)["non_torch_gib"] == oh.NT_PP_ONLY


def test_sampler_term_scales_with_max_num_seqs_times_vocab():
    a = one(max_num_seqs=1024)["activation_gib"]
    b = one(max_num_seqs=512)["activation_gib"]
    per_row = 128_256 * (2 + oh.SAMPLER_BYTES) / GIB
    assert a - b == pytest.approx(512 * per_row)


@pytest.mark.parametrize("kw,spec,needle", [
    ({"tp": 3}, None, "num_attention_heads (32) % tp (3)"),
    ({"tp": 3}, dict(heads=24, kv_heads=8), "num_key_value_heads (8) and tp (3)"),
    ({"pp": 40}, None, "pp (40) > num_hidden_layers (32)"),
    ({"ep": True, "tp": 2}, None, "expert parallel needs a MoE model"),
    ({"tp": 16}, None, "tp (16) > gpus_per_node (8)"),
    ({"tp": 8, "pp": 2, "max_nodes": 1}, None, "tp*pp*dp (16) GPUs > max_nodes (1) x gpus_per_node (8)"),
])
def test_validity_rules_name_the_rule(kw, spec, needle):
    r = one(dense_spec(**spec) if spec else None, **kw)
    assert r["status"] == "invalid_layout"
    assert needle in r["reason"]


def test_ep_needs_tp_dp_at_most_experts():
    r = one(moe_spec(experts=4), tp=8, ep=True)
    assert r["status"] == "invalid_layout" and "tp*dp (8) > num_experts (4)" in r["reason"]
    ok = one(moe_spec(experts=10), tp=4, ep=True)
    assert ok["status"] == "fits" and ok["worst_rank"] == "pp0/ep0"


def test_one_off_estimate_spans_the_nodes_the_layout_needs():
    r = one(tp=8, pp=2)
    assert r["status"] == "fits" and (r["gpus"], r["nodes"]) == (16, 2)


def test_cross_node_tp_allowed_when_asked():
    r = one(tp=16, max_nodes=2, allow_cross_node_tp=True)
    assert r["status"] == "fits" and r["gpus"] == 16


def test_unsupported_model_still_gets_a_row():
    s = dense_spec()
    s.unsupported_reason = "hybrid Mamba-2 state layers are not modelled"
    r = one(s)
    assert r["status"] == "unsupported" and "Mamba" in r["reason"]
    assert r["kv_cache_gib"] is None


def test_no_kv_room_is_no_fit():
    # ~70B in bf16 (131 GiB) on one H100: weights alone exceed the device -> OOM while loading
    s = dense_spec(layers=80, hidden=8192, heads=64, inter=28672)
    r = one(s)
    assert r["status"] == "no_fit" and "while loading weights" in r["reason"]
    # ~40 layers (66 GiB): loads, but nothing is left of the 0.95 x 79.19 budget after the profile run
    s = dense_spec(layers=40, hidden=8192, heads=64, inter=28672)
    r = one(s, gpu_memory_utilization=0.85)
    assert r["weights_gib"] < H100 - 0.5
    assert r["status"] == "no_fit" and "no memory left" in r["reason"]


def test_one_request_must_fit_and_max_len_is_reported():
    r = one(mem=24.0, max_model_len=131072, gpu_memory_utilization=0.9)
    # 24 GiB GPU: 21.6 budget - 14.99 weights - overheads leaves ~5 GiB = ~40k tokens
    assert r["status"] == "no_fit" and "one request" in r["reason"]
    blocks = int(r["kv_cache_gib"] * GIB // (32 * 16 * 4096))
    assert r["max_model_len_fit"] == blocks * 16


def test_concurrency_target_and_headroom():
    r = one(concurrency=10)
    need = 10 * 512 * 32 * 16 * 4096 / GIB
    assert r["kv_needed_gib"] == pytest.approx(need)
    assert r["headroom_pct"] == pytest.approx((r["kv_cache_gib"] - need) / (0.95 * H100) * 100)
    assert r["status"] == "fits"
    tight = one(concurrency=int(r["max_concurrency"] * 0.95))
    assert tight["status"] == "tight" and 0 <= tight["headroom_pct"] < 10
    over = one(concurrency=int(r["max_concurrency"]) + 1)
    assert over["status"] == "no_fit" and "concurrency" in over["reason"]


def test_memory_outside_the_budget_must_fit():
    # util 0.99 leaves 0.79 GiB outside: CUDA context 0.5 + graphs + 2 x 1024 x vocab fp32 logits do not fit
    r = one(gpu_memory_utilization=0.99)
    assert r["status"] == "no_fit" and "outside the budget" in r["reason"]
    assert one(gpu_memory_utilization=0.95)["status"] == "fits"


def test_small_gpu_defaults_to_small_scheduler_limits():
    r = one(mem=44.4)
    assert (r["max_num_batched_tokens"], r["max_num_seqs"]) == (2048, 256)
    assert one()["max_num_batched_tokens"] == 8192
