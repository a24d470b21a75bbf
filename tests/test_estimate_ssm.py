"""The estimator on attention-free models (mamba, falcon_mamba, mamba2): no KV tokens, capacity in state slots.

vLLM (models/config.py ``MambaModelConfig`` @1936cf38): ``mamba_block_size = max_model_len``; every layer
has the same ``MambaSpec``, so one KV-cache group; a request holds one block (no prefix caching: vLLM's
``is_prefix_caching_supported`` is False for attention-free models); "GPU KV cache size" =
``num_blocks x max_model_len``; "Maximum concurrency" = ``num_blocks``.  The cells must equal that scalar
arithmetic, and bad layouts / configs must be refused with the rule named.
"""

from __future__ import annotations

import pytest

from reportgen.arch import build_spec
from reportgen.arch.errors import ConfigError
from reportgen.estimate import hybrid
from reportgen.estimate.kvcache import ATTENTION_FREE_BLOCK, kv_groups
from reportgen.job import Matrix
from reportgen.matrix import GpuLike, ModelEntry, estimate_one, evaluate_matrix

GIB = 2**30

# Mamba-Codestral-7B-v0.1's shape (mamba2): 64 layers, hidden 4096, 128 heads x 64, 8 groups, state 128
CODESTRAL = {"model_type": "mamba2", "architectures": ["Mamba2ForCausalLM"], "hidden_size": 4096,
             "num_hidden_layers": 64, "num_heads": 128, "head_dim": 64, "n_groups": 8, "state_size": 128,
             "expand": 2, "conv_kernel": 4, "vocab_size": 32768, "tie_word_embeddings": False,
             "use_bias": False, "use_conv_bias": True, "torch_dtype": "bfloat16"}
# falcon-mamba-7b's shape (falcon_mamba = Mamba-1): 64 layers, hidden 4096, intermediate 8192, state 16
FALCON_MAMBA = {"model_type": "falcon_mamba", "architectures": ["FalconMambaForCausalLM"], "hidden_size": 4096,
                "num_hidden_layers": 64, "expand": 2, "state_size": 16, "conv_kernel": 4, "vocab_size": 65024,
                "time_step_rank": 256, "tie_word_embeddings": False, "torch_dtype": "bfloat16"}


@pytest.fixture(scope="module")
def codestral():
    return build_spec(CODESTRAL)


@pytest.fixture(scope="module")
def falcon_mamba():
    return build_spec(FALCON_MAMBA)


def test_state_bytes_by_hand(codestral, falcon_mamba):
    # mamba2 TP1: conv (4 - 1) x (8192 + 2 x 8 x 128) + ssm 128 x 64 x 128, bf16
    assert codestral.layers_kv[0].state.bytes_per_seq(1, 2) == (3 * (8192 + 2048) + 128 * 64 * 128) * 2
    # TP2: groups 8 split, heads 64 per rank
    assert codestral.layers_kv[0].state.bytes_per_seq(2, 2) == (3 * (8192 + 2048) // 2 + 64 * 64 * 128) * 2
    # mamba1 TP1: conv 3 x 8192 + ssm 8192 x 16
    assert falcon_mamba.layers_kv[0].state.bytes_per_seq(1, 2) == (3 * 8192 + 8192 * 16) * 2
    assert codestral.kv_bytes_per_token(2) == 0 == falcon_mamba.kv_bytes_per_token(2)
    assert codestral.num_attention_heads == 0 and codestral.num_kv_heads == 0


@pytest.mark.parametrize("pp", [1, 2])
def test_one_state_group_block_is_max_model_len(codestral, pp):
    g = kv_groups(codestral, 1, pp, "auto", 2, 16, state_conv_bytes=2, state_mode="none")
    page = codestral.layers_kv[0].state.bytes_per_seq(1, 2)
    assert (g.n_groups, g.n_full, g.n_slide, g.n_chunk, g.n_state, g.state_blocks) == (1, 0, 0, 0, 1, 1)
    assert g.token_block == ATTENTION_FREE_BLOCK and g.attention_free
    assert g.stage_bytes_per_block == tuple(float(64 // pp * page) for _ in range(pp))
    assert g.stage_state_bytes == g.stage_bytes_per_block
    assert g.blocks_per_request(4096, 8192) == 1 == g.blocks_per_request(10**6, 8192)
    assert g.block_tokens(32768) == 32768 and g.kv_cache_tokens(428, 4096) == 428 * 4096
    with pytest.raises(ValueError, match="attention-free"):
        kv_groups(codestral, 1, pp, "auto", 2, 16, state_conv_bytes=2, state_mode="align")


def test_prefix_caching_off_by_default_for_attention_free(codestral):
    assert hybrid.is_attention_free(codestral)
    assert hybrid.state_cache_mode("0.31", None, attention_free=True) == "none"
    assert hybrid.state_cache_mode("0.31", None) == "align"          # hybrids: on from 0.28
    assert hybrid.state_cache_mode("0.31", True, attention_free=True) == "align"   # asked for: then refused


@pytest.mark.parametrize("name", ["codestral", "falcon_mamba"])
@pytest.mark.parametrize("tp", [1, 2, 4])
@pytest.mark.parametrize("m", [2048, 32768, 1_000_000])
def test_cells_equal_scalar_arithmetic(request, name, tp, m):
    spec = request.getfixturevalue(name)
    cell = evaluate_matrix([ModelEntry(name, spec)], [GpuLike("g", "g", 79.2)],
                           Matrix(tp=[tp], max_model_len=[m], gpu_memory_utilization=[0.9], max_num_batched_tokens=8192,
                                  max_num_seqs=256, concurrency=[64])).row(0, named=True)
    assert cell["status"] == "fits", cell["reason"]
    g = kv_groups(spec, tp, 1, "auto", 2, 16, state_conv_bytes=2, state_mode="none")
    page = spec.layers_kv[0].state.bytes_per_seq(tp, 2)
    nb = int(cell["kv_cache_gib"] * GIB // g.stage_bytes_per_block[0])
    assert cell["block_size"] == m                                   # vLLM's mamba_block_size
    assert cell["kv_cache_tokens"] == nb * m == g.kv_cache_tokens(nb, m)
    assert cell["kv_cache_tokens_total"] == nb * m
    assert cell["max_concurrency"] == pytest.approx(nb)              # one block per request, any length
    assert cell["kv_bytes_per_token"] == 0
    assert cell["state_bytes_per_seq"] == 64 * page                  # every layer's state, unpadded
    assert cell["concurrency_limited_by"] == ("max_num_seqs" if nb >= 256 else "state_slots")


def test_state_slots_limit_when_the_pool_is_small(codestral):
    r = estimate_one(codestral, 24.0, max_model_len=8192, max_num_seqs=1024, max_num_batched_tokens=2048,
                     gpu_memory_utilization=0.9)
    assert r["status"] in ("fits", "tight"), r["reason"]
    assert r["concurrency_limited_by"] == "state_slots"
    assert r["max_concurrency"] < 1024
    assert r["kv_cache_tokens"] == int(r["max_concurrency"]) * 8192


def test_explicit_prefix_caching_is_refused_not_guessed(codestral):
    cell = evaluate_matrix([ModelEntry("c", codestral)], [GpuLike("g", "g", 79.2)],
                           Matrix(tp=[1], max_model_len=[4096], enable_prefix_caching=True)).row(0, named=True)
    assert cell["status"] == "unsupported"
    assert "attention-free" in cell["reason"]


@pytest.mark.parametrize("tp, rule", [(3, "mamba heads (128) % tp (3)"), (16, "mamba n_groups (8) % tp (16)")])
def test_mamba2_tp_rules(codestral, tp, rule):
    cell = evaluate_matrix([ModelEntry("c", codestral)], [GpuLike("g", "g", 79.2)],
                           Matrix(tp=[tp], max_model_len=[4096])).row(0, named=True)
    assert cell["status"] == "invalid_layout"
    assert rule in cell["reason"]


def test_mamba1_tp_rule(falcon_mamba):
    cell = evaluate_matrix([ModelEntry("f", falcon_mamba)], [GpuLike("g", "g", 79.2)],
                           Matrix(tp=[3], max_model_len=[4096])).row(0, named=True)
    assert cell["status"] == "invalid_layout"
    assert "intermediate_size (8192) % tp (3)" in cell["reason"]


def test_mixed_job_with_attention_models():
    import json
    from pathlib import Path
    llama = build_spec(json.loads((Path(__file__).resolve().parents[1] / "reportgen" / "sources" / "bundled"
                                   / "meta-llama--Llama-3.1-8B-Instruct.json").read_text()))
    df = evaluate_matrix([ModelEntry("llama", llama), ModelEntry("codestral", build_spec(CODESTRAL))],
                         [GpuLike("g", "g", 79.2)], Matrix(tp=[1, 2], max_model_len=[4096, 16384]))
    ll = df.filter(df["model"] == "llama")
    cs = df.filter(df["model"] == "codestral")
    assert set(ll["block_size"].to_list()) == {64}      # attention models keep the release's block (0.34: 64)
    assert (ll["kv_bytes_per_token"] > 0).all() and (ll["state_bytes_per_seq"] == 0).all()
    assert sorted(set(cs["block_size"].to_list())) == [4096, 16384]
    assert (cs["kv_bytes_per_token"] == 0).all() and (cs["state_bytes_per_seq"] > 0).all()


@pytest.mark.parametrize("patch, field", [
    ({"n_groups": 3}, "n_groups"),                                   # 128 heads not a multiple of 3 groups
    ({"head_dim": 32}, "head_dim"),                                  # 128 x 32 != 2 x 4096
    ({"state_size": 0}, "state_size"),
    ({"conv_kernel": "4"}, "conv_kernel"),
])
def test_malformed_mamba2_names_the_field(patch, field):
    with pytest.raises(ConfigError) as e:
        build_spec({**CODESTRAL, **patch})
    assert field in str(e.value)


def test_intermediate_size_that_vllm_and_transformers_read_differently_is_refused():
    spec = build_spec({**CODESTRAL, "intermediate_size": 4096})
    assert spec.unsupported_reason and "intermediate_size" in spec.unsupported_reason
    assert build_spec({**CODESTRAL, "intermediate_size": 8192}).unsupported_reason is None


@pytest.mark.parametrize("model_type", ["mamba", "falcon_mamba"])
def test_malformed_mamba1_names_the_field(model_type):
    with pytest.raises(ConfigError) as e:
        build_spec({**FALCON_MAMBA, "model_type": model_type, "num_hidden_layers": 0})
    assert "num_hidden_layers" in str(e.value)


@pytest.mark.parametrize("tp", [1, 2, 8])
def test_mixer_width_is_the_forward_activation(codestral, falcon_mamba, tp):
    """No MLP to carry the forward peak: the profile run's mixer tensors (overheads.mamba_profile_cols)."""
    from reportgen.estimate import overheads as oh
    from reportgen.estimate.layout import Layout
    from reportgen.estimate.tables import activation_coeffs, model_facts

    f = model_facts(codestral)
    assert f.mlp_cols == 0 and f.ssm_state is codestral.layers_kv[0].state
    c = activation_coeffs(f, Layout(tp=tp), 2)
    assert c["a_fwd_t"] == pytest.approx(2 * (oh.BETA_HIDDEN * 4096 + (4 * 8192 + 4 * 8 * 128 + 128) / tp))
    f1 = model_facts(falcon_mamba)
    c1 = activation_coeffs(f1, Layout(tp=tp), 2)
    assert c1["a_fwd_t"] == pytest.approx(2 * (oh.BETA_HIDDEN * 4096 + 3 * 8192 / tp))


def test_pipeline_parallel_mamba2_is_invalid_mamba1_is_priced(codestral, falcon_mamba):
    """vLLM's Mamba2ForCausalLM lacks SupportsPP (mamba2.py @055e47c2); MambaForCausalLM has it."""
    m = Matrix(tp=[1], pp=[2], max_model_len=[4096])
    cell = evaluate_matrix([ModelEntry("c", codestral)], [GpuLike("g", "g", 79.2)], m).row(0, named=True)
    assert cell["status"] == "invalid_layout" and "SupportsPP" in cell["reason"]
    cell = evaluate_matrix([ModelEntry("f", falcon_mamba)], [GpuLike("g", "g", 79.2)], m).row(0, named=True)
    assert cell["status"] == "fits", cell["reason"]
    g = kv_groups(falcon_mamba, 1, 2, "auto", 2, 16, state_conv_bytes=2, state_mode="none")
    nb = int(cell["kv_cache_gib"] * GIB // g.stage_bytes_per_block[0])
    assert cell["state_bytes_per_seq"] == 32 * falcon_mamba.layers_kv[0].state.bytes_per_seq(1, 2)
    assert cell["max_concurrency"] == pytest.approx(nb) and cell["block_size"] == 4096
