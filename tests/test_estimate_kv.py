"""KV cache: bytes per token per rank, vLLM's layer groups, blocks per request, largest context."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from reportgen.estimate.exprs import blocks_per_request, max_len_fit
from reportgen.estimate.kvcache import KvGroups, kv_bytes_per_token, kv_groups, max_model_len_fit_scalar
from test_estimate_specs import dense_spec, mla_spec

BUNDLED = Path(__file__).resolve().parents[1] / "reportgen" / "sources" / "bundled"


def test_gqa_bytes_per_token_shard_then_replicate():
    s = dense_spec()                                   # 32 layers, 8 KV heads of 128
    assert kv_bytes_per_token(s, "auto", 2, 1) == 32 * 8 * 256 * 2 == 131_072
    assert kv_bytes_per_token(s, "auto", 2, 2) == 65_536
    assert kv_bytes_per_token(s, "auto", 2, 8) == 16_384
    assert kv_bytes_per_token(s, "auto", 2, 16) == 16_384      # one head per rank, replicated
    assert kv_bytes_per_token(s, "fp8", 2, 1) == 65_536
    assert kv_bytes_per_token(s, "auto", 4, 1) == 262_144      # fp32 model: auto KV is fp32


def test_mla_latent_not_divided_by_tp():
    s = mla_spec()                                     # 27 layers x (512 + 64)
    assert kv_bytes_per_token(s, "auto", 2, 1) == kv_bytes_per_token(s, "auto", 2, 2) == 27 * 576 * 2
    assert kv_bytes_per_token(s, "fp8_ds_mla", 2, 4) == 27 * 656


def test_deepseek_v2_lite_bundled_same_at_tp1_and_tp2():
    from reportgen.arch import build_spec
    spec = build_spec(json.loads((BUNDLED / "deepseek-ai--DeepSeek-V2-Lite.json").read_text()),
                      "deepseek-ai/DeepSeek-V2-Lite")
    assert kv_bytes_per_token(spec, "auto", 2, 1) == kv_bytes_per_token(spec, "auto", 2, 2) == 31_104


def test_uniform_model_one_group_pages_per_stage():
    g = kv_groups(dense_spec(), tp=1, pp=4, kv_dtype="auto", elem_bytes=2)
    page = 16 * 4096                                   # 16 tokens x 8 heads x 256 x 2 B
    assert (g.n_groups, g.n_full, g.n_slide) == (1, 1, 0)
    assert g.stage_bytes_per_block == (8 * page,) * 4
    assert g.blocks_per_request(8192, 8192) == 512
    assert g.blocks_per_request(8193, 8192) == 513


def test_gemma2_like_hybrid_two_groups():
    # 42 layers alternating sliding(4096)/full, 8 KV heads of 256: vLLM makes 2 groups of 21
    s = dense_spec(layers=42, hidden=3584, heads=16, kv_heads=8, head_dim=256, window=4096, window_every=2)
    g = kv_groups(s, tp=1, pp=1, kv_dtype="auto", elem_bytes=2)
    assert (g.n_groups, g.n_full, g.n_slide, g.window) == (2, 1, 1, 4096)
    assert g.stage_bytes_per_block == (21 * 16 * 8 * 512 * 2,)
    # row 92 of vllm_logs.csv: 8192 tokens, F = 8192 -> full 512 + sliding cdiv(8192,16)+1 = 1025 blocks
    assert g.blocks_per_request(8192, 8192) == 1025
    assert round(21110 / g.blocks_per_request(8192, 8192), 2) == 20.60   # vLLM printed 20.60x
    # long context: the sliding group stays at cdiv(4095 + 8192, 16) + 1 = 769 blocks
    assert g.blocks_per_request(131072, 8192) == 8192 + 769


def test_gemma3_like_5_to_1_six_groups():
    s = dense_spec(layers=48, hidden=3840, heads=16, kv_heads=8, head_dim=256, window=1024, window_every=6)
    g = kv_groups(s, tp=1, pp=1, kv_dtype="auto", elem_bytes=2)
    assert (g.n_groups, g.n_full, g.n_slide) == (6, 1, 5)    # 8 full, 40 sliding -> group size 8
    assert g.stage_bytes_per_block == (8 * 16 * 8 * 512 * 2,)
    assert g.blocks_per_request(8192, 8192) == 512 + 5 * 513 == 3077
    assert round(48867 / 3077, 2) == 15.88                      # row 93: 48,867 blocks, 15.88x


def test_hybrid_pp_stage_group_size_is_max_layers_of_a_group_on_the_stage():
    s = dense_spec(layers=6, window=512, window_every=3)        # kinds: S S F S S F
    g = kv_groups(s, tp=1, pp=2, kv_dtype="auto", elem_bytes=2)
    # 2 full (group size 2), 4 sliding -> 2 sliding groups: [1,4] and [0,3]; stages (0-2), (3-5)
    assert g.n_groups == 3
    page = 16 * 8 * 256 * 2
    assert g.stage_bytes_per_block == (page, page)


def _frame(g: KvGroups, nb: int, t: int, m: int, cap: int) -> pl.DataFrame:
    d = {k: [getattr(g, k)] for k in ("n_full", "bs_full", "n_slide", "window", "bs_slide", "n_chunk", "chunk",
                                       "bs_chunk", "n_state", "state_blocks", "n_slide2", "window2", "bs_slide2",
                                       "n_slide3", "window3", "bs_slide3")}
    return pl.DataFrame({**d, "_nb": [nb], "t": [t], "m": [m], "max_pos": [cap]},
                        schema_overrides={"max_pos": pl.Int64})


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from(["full", "sliding", "chunked", "all_sliding"]),
       window=st.integers(1, 9000), nb=st.integers(0, 40_000), t=st.sampled_from([512, 2048, 8192]),
       m=st.integers(1, 200_000))
def test_vectorised_blocks_and_max_len_match_scalar(kind, window, nb, t, m):
    n_full = 0 if kind == "all_sliding" else 1
    n_slide = {"sliding": 3, "all_sliding": 1}.get(kind, 0)
    n_chunk = 2 if kind == "chunked" else 0
    g = KvGroups(n_full + n_slide + n_chunk, n_full, 16, n_slide, window, 16, n_chunk, window, 16, 16,
                 (1.0,), (1.0,))
    cap = 131_072
    df = _frame(g, nb, t, m, cap).select(
        blocks_per_request(pl.col("m"), pl.col("t")).alias("bpr"),
        max_len_fit(pl.col("_nb"), pl.col("t")).alias("fit"))
    assert df["bpr"][0] == g.blocks_per_request(m, t)
    assert df["fit"][0] == max_model_len_fit_scalar(g, nb, t, cap)
