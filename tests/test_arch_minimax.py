"""MiniMax-Text-01 / MiniMax-M1 (minimax): per-rank shards of the lightning layer, the lightning state and the
hybrid KV pool priced as vLLM allocates them, float32 head / router / rotary cache, served only up to vLLM 0.23,
bad input.

Sources (reportgen/arch/families/minimax.py): vLLM ``vllm/model_executor/models/minimax_text_01.py`` @98370df7,
``vllm/model_executor/layers/mamba/linear_attn.py`` @038f589a, ``layers/mamba/mamba_utils.py`` @2afe1e85:

* ``MambaStateShapeCalculator.linear_attention_state_shape``: ``(num_heads // tp_size, head_dim, head_dim)``;
  ``MambaStateDtypeCalculator.linear_attention_state_dtype``: ``get_kv_cache_torch_dtype(mamba_cache_dtype,
  model_dtype)`` (auto -> the model dtype, bf16 here: 2 bytes);
* ``MiniMaxText01Attention``: ``num_kv_heads = max(1, total_num_kv_heads // tp)``, K and V of ``head_dim`` each;
* the attention block size vLLM raises so a page holds a state page (estimate/hybrid.py:
  ``16 * cdiv(state_page, 16 * attn_page_1_token)``).
"""

from __future__ import annotations

import copy

import pytest

from reportgen.arch import build_spec
from reportgen.arch.errors import ConfigError
from reportgen.arch.spec import AttentionKind, Component, Shard
from reportgen.estimate import hybrid
from reportgen.estimate.kvcache import kv_groups
from reportgen.estimate.served import LAST_SERVED, spec_for_version
from reportgen.matrix import GpuLike, estimate_one

from test_arch_hybrid_mamba import rank_elements, state_tp_rule

H200 = GpuLike(id="h200", name="H200", usable_memory_gib=139.8)

# written FROM MEMORY from the published MiniMax-Text-01 / MiniMax-M1 geometry (no such config is in
# /work/shared/reference); tests/test_oracle_minimax.py checks it on the meta device: 456 B parameters, 45.9 B active
TEXT01 = {
    "model_type": "minimax", "architectures": ["MiniMaxForCausalLM"], "hidden_size": 6144, "num_hidden_layers": 80,
    "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 128, "intermediate_size": 9216,
    "num_local_experts": 32, "num_experts_per_tok": 2, "vocab_size": 200064, "max_position_embeddings": 10240000,
    "rope_theta": 10000000, "rotary_dim": 64, "layer_types": (["linear_attention"] * 7 + ["full_attention"]) * 10,
    "tie_word_embeddings": False, "block_size": 256, "rms_norm_eps": 1e-5, "torch_dtype": "bfloat16",
}



@pytest.fixture(scope="module")
def text01():
    return build_spec(TEXT01)


def test_layer_kinds_follow_layer_types(text01):
    kinds = text01.layers_kv
    assert [i for i, l in enumerate(kinds) if l.kind is AttentionKind.FULL] == list(range(7, 80, 8))
    assert all(l.kind is AttentionKind.STATE and l.state.kind == "linear_attention" and l.state.dims == (64, 128)
               for i, l in enumerate(kinds) if i % 8 != 7)
    assert text01.num_experts == 32 and text01.experts_per_token == 2


@pytest.mark.parametrize("tp", [1, 2, 4, 8])
def test_lightning_rows_per_rank_match_vllm(text01, tp):
    # qkv_proj / output_gate ColumnParallel, out_proj RowParallel, MiniMaxText01RMSNormTP keeps P / tp rows
    p, inner = "model.layers.0.self_attn", 64 * 128
    assert rank_elements(text01, f"{p}.qkv_proj", tp) == 3 * inner // tp * 6144
    assert rank_elements(text01, f"{p}.output_gate", tp) == inner // tp * 6144
    assert rank_elements(text01, f"{p}.out_proj", tp) == 6144 * inner // tp
    assert rank_elements(text01, f"{p}.norm", tp) == inner // tp


@pytest.mark.parametrize("tp, per_layer", [(1, 64 * 128 * 128 * 2), (2, 32 * 128 * 128 * 2),
                                           (4, 16 * 128 * 128 * 2), (8, 8 * 128 * 128 * 2)])
def test_state_bytes_per_sequence_by_hand(text01, tp, per_layer):
    # (num_heads // tp, head_dim, head_dim) in the model dtype (bf16), no conv state
    state = text01.layers_kv[0]
    assert hybrid.state_layer_bytes(state, tp, 2) == per_layer
    assert state.state.bytes_per_seq(tp, 2) == per_layer


@pytest.mark.parametrize("tp", [1, 2, 4, 8])
def test_kv_pool_block_size_and_token_bytes_by_hand(text01, tp):
    kv_heads = max(1, 8 // tp)
    attn_1tok = kv_heads * 128 * 2 * 2                 # K + V, bf16, one softmax layer
    assert text01.kv_bytes_per_token(2, tp) == 10 * attn_1tok
    state_page = 64 // tp * 128 * 128 * 2
    g = kv_groups(text01, tp, 1, "auto", 2, 16, state_conv_bytes=2, state_mode="none")
    assert g.token_block == 16 * -(-state_page // (16 * attn_1tok))
    assert g.token_block == 512                        # state and KV both split by tp while kv heads >= tp
    assert g.n_groups == 8 and g.n_state == 7          # groups of 10 layers: 1 softmax group, 70 / 10 state groups
    assert g.stage_token_bytes == (10 * attn_1tok,)


def test_fp32_lm_head_router_and_rotary_cache(text01):
    by_name = {t.name: t for t in text01.tensors}
    assert by_name["lm_head.weight"].dtype_bytes == 4 and by_name["lm_head.weight"].shard is Shard.VOCAB
    assert by_name["model.embed_tokens.weight"].dtype_bytes == 0
    router = by_name["model.layers.3.mlp.gate.weight"]
    assert router.dtype_bytes == 4 and router.component is Component.ROUTER and router.shape == (32, 6144)
    assert text01.rotary_dim == 64
    # get_rope(..., dtype=torch.float32): rows at max_position_embeddings, then per max_model_len (LengthRows)
    assert text01.rope_caches[0][:3] == (10_240_000, 64, 4) and len(text01.rope_caches) == 1
    assert text01.rope_length_mode == "min" and text01.rope_caches[0][3].mode == "min"
    assert any("min(max_position_embeddings, max_model_len)" in n for n in text01.notes)
    no_softmax = build_spec(dict(TEXT01, layer_types=["linear_attention"] * 80))
    assert no_softmax.rope_caches == ()


def test_priced_on_0_23_with_the_state_pool(text01):
    r = estimate_one(text01, H200, tp=8, max_model_len=65536, vllm_version="0.23")
    assert r["status"] in ("fits", "tight")
    assert r["block_size"] == 512
    assert r["state_bytes_per_seq"] == 70 * 512 * (1 * 128 * 2 * 2)    # 70 pages of 512 tokens x 512 B (no padding)
    assert r["state_bytes_per_seq"] == 70 * 8 * 128 * 128 * 2


@pytest.mark.parametrize("arch", ["MiniMaxForCausalLM", "MiniMaxText01ForCausalLM", "MiniMaxM1ForCausalLM"])
def test_refused_after_vllm_0_23(text01, arch):
    spec = copy.copy(text01)
    spec.architectures = (arch,)
    assert LAST_SERVED[arch] == "0.23.0"
    assert spec_for_version(spec, "0.23") is spec
    gone = estimate_one(spec_for_version(spec, "0.24"), H200, tp=8, max_model_len=65536, vllm_version="0.24")
    assert gone["status"] == "unsupported"
    assert arch in gone["reason"] and "supported until v0.23.0" in gone["reason"]


def test_heads_not_divisible_by_tp_is_invalid_layout(text01):
    assert state_tp_rule(text01, 8) is None
    r = estimate_one(text01, H200, tp=3, max_model_len=65536, vllm_version="0.23")
    assert r["status"] == "invalid_layout" and "(64) % tp (3)" in r["reason"]
    # the lightning heads themselves (the state layer's rule), named as such
    assert "linear attention num_heads (64) % tp (3)" in state_tp_rule(text01, 3)


@pytest.mark.parametrize("change, field, words", [
    ({"layer_types": TEXT01["layer_types"][:-1]}, "layer_types", "79 entries for num_hidden_layers 80"),
    ({"layer_types": ["linear_attention"] * 79 + ["sliding_attention"]}, "layer_types", "unknown layer kind"),
    ({"attn_type_list": [0] * 79}, "attn_type_list", "must be a list of 80 layer kinds"),
    ({"rotary_dim": 256}, "rotary_dim", "256 exceeds head_dim 128"),
    ({"rotary_dim": 0}, "rotary_dim", ">= 1"),
])
def test_bad_input_is_a_config_error(change, field, words):
    with pytest.raises(ConfigError) as e:
        build_spec(dict(TEXT01, **change))
    assert e.value.field == field and words in e.value.message


@pytest.mark.parametrize("change, words", [
    ({"head_dim": None}, "reads hf_config.head_dim"),
    ({"num_local_experts": 1, "num_experts_per_tok": 1}, "dense MLP without a router"),
    ({"shared_intermediate_size": 1024}, "shared MLP"),
    ({"tie_word_embeddings": True}, "never ties"),
    ({"attn_type_list": [1] * 80}, "attn_type_list disagrees with layer_types"),
])
def test_configs_vllm_builds_differently_are_refused(change, words):
    spec = build_spec(dict(TEXT01, **change))
    assert spec.unsupported_reason and words in spec.unsupported_reason


def test_agreeing_attn_type_list_is_accepted():
    spec = build_spec(dict(TEXT01, attn_type_list=([0] * 7 + [1]) * 10))
    assert spec.unsupported_reason is None and spec.params_total == 456_089_655_296


def test_float32_tensors_cost_their_bytes_on_each_rank(text01):
    """lm_head (VOCAB: 200064 rows, a multiple of 64, / tp) and the 80 replicated routers at 4 bytes, not 2; the
    rotary cache 10,240,000 x 64 x 4 bytes on every rank."""
    from dataclasses import replace

    from reportgen.estimate.weights import rotary_cache_bytes

    plain = copy.copy(text01)
    plain.tensors = [replace(t, dtype_bytes=0) for t in text01.tensors]
    cells = [estimate_one(s, H200, tp=8, max_model_len=65536, vllm_version="0.23")["weights_gib"]
             for s in (text01, plain)]
    extra = 200064 * 6144 * (4 - 2) // 8 + 80 * 32 * 6144 * (4 - 2)
    # + the lm_head's allocator block at 0.23 (never split from 0.21, weights.allocator_unsplit_bytes, branch load29):
    # float32 200,064 x 6,144 x 4 / 8 = 586.125 MiB -> 588 (+1.875) against bf16 293.0625 -> 294 (+0.9375)
    extra += (1.875 - 0.9375) * 2**20
    assert (cells[0] - cells[1]) * 2**30 == pytest.approx(extra, abs=1)
    assert rotary_cache_bytes(text01, 2) == 10_240_000 * 64 * 4


# --- the rotary cache per max_model_len (vLLM minimax_text_01.py @98370df7) --------------------------------------
# MiniMaxText01ForCausalLM.__init__: ``self.config.max_model_len = vllm_config.model_config.max_model_len``;
# MiniMaxText01DecoderLayer.__init__: ``max_position_embeddings = min(config.max_position_embeddings,
# config.max_model_len)`` passed as ``max_position`` to MiniMaxText01Attention, whose ``get_rope(head_size=head_dim,
# max_position=max_position, rope_parameters=..., is_neox_style=True, dtype=torch.float32)`` (partial_rotary_factor
# = rotary_dim / head_dim) builds a RotaryEmbedding cos_sin_cache of max_position x rotary_dim float32 -- one module,
# memoised across the softmax layers, on every rank (not split by TP).
LENGTHS = (8192, 131_072, 1_048_576, 10_240_000)


def vllm_rotary_bytes(max_model_len: int) -> int:
    return min(10_240_000, max_model_len) * 64 * 4


@pytest.mark.parametrize("max_model_len", LENGTHS + (20_000_000,))
def test_rotary_cache_rows_follow_max_model_len(text01, max_model_len):
    from reportgen.estimate.weights import rotary_cache_bytes

    assert rotary_cache_bytes(text01, 2, max_model_len) == vllm_rotary_bytes(max_model_len)
    assert rotary_cache_bytes(text01, 2) == vllm_rotary_bytes(10_240_000)      # vLLM's default max_model_len


def test_weights_per_max_model_len_estimate_and_matrix(text01):
    """estimate_one at each length and one matrix over all four lengths give the same rows, whose weights differ
    by the rotary cache alone: weights(M) x 2^30 - min(10,240,000, M) x 64 x 4 is one figure (the parameters)."""
    from reportgen.job import Matrix
    from reportgen.matrix import ModelEntry, evaluate_matrix

    one = {m: estimate_one(text01, H200, tp=8, max_model_len=m, concurrency=4, vllm_version="0.23")
           for m in LENGTHS}
    params = {m: round(r["weights_gib"] * 2**30 - vllm_rotary_bytes(m)) for m, r in one.items()}
    assert len(set(params.values())) == 1, params
    # 2.44 GiB less at 8,192 than at the default length (the figure priced before)
    assert (one[10_240_000]["weights_gib"] - one[8192]["weights_gib"]) * 2**30 == (10_240_000 - 8192) * 256
    # the memory the cache gives back goes to the KV cache
    assert one[8192]["kv_cache_gib"] - one[10_240_000]["kv_cache_gib"] == pytest.approx(
        (10_240_000 - 8192) * 256 / 2**30, abs=1e-9)
    mx = Matrix(tp=[8], max_model_len=list(LENGTHS), concurrency=[1, 4], vllm_version="0.23")
    df = evaluate_matrix([ModelEntry("minimax", text01)], [H200], mx)
    assert df["max_model_len"].to_list() == [m for m in LENGTHS for _ in (1, 4)]
    for row in df.filter(df["concurrency"] == 4).iter_rows(named=True):
        want = one[row["max_model_len"]]
        for k, v in row.items():
            if k in want and k != "model":
                assert v == want[k], (row["max_model_len"], k, v, want[k])


def test_per_length_weights_batches_and_lazy_equal_the_frame(text01):
    """The one-table-per-length path keeps the cell order (row, length, concurrency) through every entry point."""
    import polars as pl
    from polars.testing import assert_frame_equal

    from reportgen.job import Matrix
    from reportgen.matrix import ModelEntry, evaluate_matrix, evaluate_matrix_lazy, iter_cell_batches

    other = build_spec(dict(TEXT01, layer_types=["linear_attention"] * 80))     # no rotary cache: one table
    models = [ModelEntry("a", text01), ModelEntry("b", other), ModelEntry("c", text01)]
    gpus = [H200, GpuLike(id="b200", name="B200", usable_memory_gib=178.4)]
    mx = Matrix(tp=[4, 8], pp=[1, 2], max_model_len=[131_072, 8192, 10_240_000], concurrency=[1, 8, 64],
                vllm_version="0.23")
    frame = evaluate_matrix(models, gpus, mx)
    assert frame.height == 3 * 2 * 4 * 3 * 3
    assert_frame_equal(pl.concat(list(iter_cell_batches(models, gpus, mx, batch_cells=40))), frame)
    assert_frame_equal(evaluate_matrix_lazy(models, gpus, mx, batch_cells=80).collect(), frame)
    lazy0 = evaluate_matrix_lazy(models, gpus, mx, stage0_columns=True).collect()   # the validation columns
    assert_frame_equal(lazy0.drop("stage0_weights_gib", "stage0_activation_gib", "stage0_kv_cache_gib"), frame)
    pp1 = lazy0.filter((pl.col("pp") == 1) & pl.col("weights_gib").is_not_null())
    assert pp1.height and (pp1["stage0_weights_gib"] == pp1["weights_gib"]).all()
    w = frame.filter((pl.col("model") == "a") & (pl.col("tp") == 8) & (pl.col("pp") == 1) & (pl.col("gpu") == "h200")
                     & (pl.col("concurrency") == 1))
    assert w["max_model_len"].to_list() == [131_072, 8192, 10_240_000]
    g = [x * 2**30 for x in w["weights_gib"].to_list()]
    assert g[2] - g[1] == (10_240_000 - 8192) * 256 and g[0] - g[1] == (131_072 - 8192) * 256
    # the model without a softmax layer has no cache: its weights are one figure at every length
    assert frame.filter(pl.col("model") == "b").group_by("tp", "pp", "gpu").agg(
        pl.col("weights_gib").n_unique().alias("n"))["n"].max() == 1


def test_reportgen_estimate_prices_the_cache_at_its_length(tmp_path):
    import contextlib
    import io
    import json

    from reportgen.cli import main

    path = tmp_path / "config.json"
    path.write_text(json.dumps(TEXT01))
    out = {}
    for m in (8192, 10_240_000):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            rc = main(["estimate", str(path), "--json", "--offline", "--vllm-version", "0.23", "--gpu", "H200",
                       "--tp", "8", "--max-model-len", str(m)])
        assert rc == 0
        out[m] = json.loads(buf.getvalue())
    assert (out[10_240_000]["weights_gib"] - out[8192]["weights_gib"]) * 2**30 == (10_240_000 - 8192) * 64 * 4


# --- MiniMax-M2: the same mechanism with ``max`` (vLLM minimax_m2.py @01d99586) ------------------------------------
# MiniMaxM2ForCausalLM.__init__ copies model_config.max_model_len into the config; MiniMaxM2DecoderLayer.__init__:
# ``max_position_embeddings = max(config.max_position_embeddings, config.max_model_len)``, passed to
# MiniMaxM2Attention's ``get_rope(head_dim, max_position=max_position_embeddings, rope_parameters)`` (model dtype,
# partial_rotary_factor = rotary_dim / head_dim): the cache only grows past max_position_embeddings, i.e. with
# VLLM_ALLOW_LONG_MAX_MODEL_LEN.
def _m2():
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "reportgen/sources/bundled/MiniMaxAI--MiniMax-M2.5.json"
    return build_spec(json.loads(path.read_text()), "MiniMaxAI/MiniMax-M2.5")


def test_minimax_m2_cache_grows_only_above_max_position_embeddings():
    from reportgen.estimate.weights import rotary_cache_bytes
    from reportgen.job import Matrix
    from reportgen.matrix import ModelEntry, _per_length

    m2 = _m2()
    assert m2.rope_length_mode == "max" and m2.rope_caches[0][:3] == (196_608, 64, 0)
    for m, rows in ((8192, 196_608), (196_608, 196_608), (393_216, 393_216)):
        assert rotary_cache_bytes(m2, 2, m) == rows * 64 * 2
    # lengths up to max_position_embeddings: the one-table fast path (the benchmark's MiniMax-M2.5 rows)
    entry = ModelEntry("m2", m2)
    assert _per_length(entry, Matrix(max_model_len=[4096, 32768, 131072, 196_608])) == 0
    assert _per_length(entry, Matrix(max_model_len=[8192, 393_216])) == 2
    h200 = GpuLike(id="h200", name="H200", usable_memory_gib=139.8)
    w = {m: estimate_one(m2, h200, tp=4, max_model_len=m, allow_long_max_model_len=True)["weights_gib"]
         for m in (8192, 196_608, 393_216)}
    assert w[8192] == w[196_608]
    assert (w[393_216] - w[196_608]) * 2**30 == (393_216 - 196_608) * 64 * 2


def test_only_the_minimax_families_size_rotary_caches_by_length():
    """Every bundled model: only MiniMax-M2.5 carries a length rule, and the default job's lengths keep it on the
    one-table path (its cache is max_position_embeddings rows at every length up to it)."""
    import json
    from pathlib import Path

    from reportgen.job import Matrix
    from reportgen.matrix import ModelEntry, _per_length

    bundled = Path(__file__).resolve().parents[1] / "reportgen/sources/bundled"
    ruled = []
    for p in sorted(bundled.glob("*.json")):
        if p.name.endswith(".hf_quant_config.json"):
            continue
        spec = build_spec(json.loads(p.read_text()), p.stem.replace("--", "/"))
        if spec.rope_length_mode:
            ruled.append(p.stem)
        assert _per_length(ModelEntry(p.stem, spec), Matrix(max_model_len=[4096, 32768, 131072])) in (0, 1)
    assert ruled == ["MiniMaxAI--MiniMax-M2.5"]


def test_per_length_cells_equal_one_length_jobs_interleaved(text01):
    """An oracle outside ``_length_frame``: each length run as its own one-length job (the one-table path, weights at
    that length through ``EngineOptions.max_model_len``), interleaved by hand into (row, length, concurrency) order,
    is the several-length job cell for cell -- for the MiniMax rows and the other models' rows alike, through
    ``evaluate_matrix`` and through ``iter_cell_batches`` with one model per prepared chunk (prep_cells=1) and small
    batches (branch review21)."""
    import polars as pl
    from polars.testing import assert_frame_equal

    from reportgen.job import Matrix
    from reportgen.matrix import ModelEntry, evaluate_matrix, iter_cell_batches

    other = build_spec(dict(TEXT01, layer_types=["linear_attention"] * 80))
    models = [ModelEntry("a", text01), ModelEntry("b", other), ModelEntry("c", text01), ModelEntry("d", other)]
    gpus = [H200, GpuLike(id="b200", name="B200", usable_memory_gib=178.4)]
    lengths, conc = [131_072, 8192, 10_240_000], [1, 8]
    kw = dict(tp=[4, 8], pp=[1, 2], concurrency=conc, vllm_version="0.23")
    parts = []
    for k, v in enumerate(lengths):
        one = evaluate_matrix(models, gpus, Matrix(max_model_len=[v], **kw)).with_row_index("_i")
        parts.append(one.with_columns((pl.col("_i") // len(conc)).alias("_u"), pl.lit(k).alias("_l"),
                                      (pl.col("_i") % len(conc)).alias("_c")))
    want = pl.concat(parts).sort("_u", "_l", "_c").drop("_i", "_u", "_l", "_c")
    mx = Matrix(max_model_len=lengths, **kw)
    frame = evaluate_matrix(models, gpus, mx)
    assert frame.height == want.height == 4 * 2 * 4 * 3 * 2
    assert_frame_equal(frame, want)
    batches = list(iter_cell_batches(models, gpus, mx, batch_cells=12, prep_cells=1))
    assert max(b.height for b in batches) <= 12
    assert_frame_equal(pl.concat(batches), want)


@pytest.mark.parametrize("rope", [True, False])
def test_iter_cell_batches_drops_a_chunk_before_preparing_the_next(text01, monkeypatch, rope):
    """The streaming path's memory bound (``iter_cell_batches``: one prepared chunk at a time): when the next chunk is
    prepared, the previous chunk's ``_Rows`` (one per length on the per-length path) are already released.  Measured
    (peak RSS, ``iter_cell_batches`` over benchmarks/bench_matrix.py's matrix(2) with lengths 4,096-131,072, vLLM 0.23,
    25 GPUs, 52 / 104 copies of a model = one / two 8 M-cell chunks): held, 1,506 -> 2,043 MiB (no rotary cache)
    and 2,404 -> 3,959 MiB (MiniMax-Text-01, per-length); released, 1,510 -> 1,584 and 2,444 -> 2,517 MiB
    (branch review21)."""
    import gc
    import weakref

    from reportgen.matrix import batches as M      # iter_cell_batches looks _prepare, _length_matrices up there
    from reportgen.job import Matrix

    spec = text01 if rope else build_spec(dict(TEXT01, layer_types=["linear_attention"] * 80))
    models = [M.ModelEntry(f"m{i}", spec) for i in range(3)]
    mx = Matrix(tp=[4, 8], max_model_len=[8192, 131_072], concurrency=[1, 8], vllm_version="0.23")
    alive: list = []
    prepare = M._prepare

    def tracked(*a, **k):
        r = prepare(*a, **k)
        alive.append(weakref.ref(r))
        return r

    def per_run(run, matrix):          # called once per run, before the run's first _prepare
        gc.collect()
        assert not [w for w in alive if w() is not None], "a previous chunk is still referenced"
        return real_lengths(run, matrix)

    real_lengths = M._length_matrices
    # the serial loop (one core); on two cores ``_runs_ahead`` may hold the previous run's chunk beside the next one
    # when the two are small (tests/test_matrix_ahead.py::test_at_most_two_prepared_chunks_and_one_when_they_are_big)
    monkeypatch.setattr(M.ahead, "workers", lambda: 1)
    monkeypatch.setattr(M, "_prepare", tracked)
    monkeypatch.setattr(M, "_length_matrices", per_run)
    n = sum(b.height for b in M.iter_cell_batches(models, [H200], mx, batch_cells=4, prep_cells=1))
    assert n == 3 * 2 * 2 * 2 and len(alive) == 3 * (2 if rope else 1)


def test_per_length_path_with_an_empty_axis_gives_no_cell(text01):
    """An empty concurrency axis: no cell, as on the one-table path (the per-length batch size divided by it)."""
    from reportgen.job import Matrix
    from reportgen.matrix import ModelEntry, evaluate_matrix, iter_cell_batches

    mx = Matrix(tp=[8], max_model_len=[8192, 131_072], concurrency=[], vllm_version="0.23")
    assert list(iter_cell_batches([ModelEntry("a", text01)], [H200], mx)) == []
    assert evaluate_matrix([ModelEntry("a", text01)], [H200], mx).height == 0
