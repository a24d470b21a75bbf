"""DeepSeek-V4's compressed-attention terms that depend on max_model_len (the profile-run prefill gather and
indexer workspaces, the KV blocks left, the logged concurrency and the largest length that fits), and the DSA
lightning indexer's K-gather reservation (DeepSeek-V3.2 / GLM-5), as polars expressions on the per-length rows.

Why a module of its own: ``compressed_lens`` runs only on DeepSeek-V4's rows (``tok_conc`` 1,
``matrix._special_rows``), after ``exprs.util_pass`` and around ``exprs.lens_pass`` (terms before it, the fit
after); ``dsa_indexer_gib`` shares its workspace arithmetic (``_round_up``, the indexer constants) and is applied
by ``encoder_lens``.  The scalar twins are in ``compressed.py``.  Split out of ``exprs.py`` unchanged; ``exprs``
re-exports every name.
"""

from __future__ import annotations

import polars as pl

from .request_blocks import BIG, _cdiv, blocks_per_request
from .tables import GIB

# what the per-length pass needs from the (layout, GPU, util) rows for DeepSeek-V4 (``compressed_lens``)
COMPRESSED_IN = ("tok_conc", "ws_b", "ws_w", "ix_d", "a_moe_t", "cw0", "cw1", "cw2", "cw3", "_wsr", "activation_gib",
                 "kv_cache_tokens", "max_model_len_fit",
                 "n_slide2", "window2", "bs_slide2", "n_slide3", "window3", "bs_slide3", "hpu")
COMPRESSED_OUT = ("_nbv", "kv_cache_gib", "activation_gib", "kv_cache_tokens", "kv_cache_tokens_total",
                  "max_model_len_fit", "max_concurrency", "max_concurrency_total")
FIT_STEPS = 31          # binary-search steps: any max_model_len below 2**31


def _round_up(x: pl.Expr, a: int) -> pl.Expr:
    return _cdiv(x, pl.lit(a)) * a


def _ws_rows(m: pl.Expr, ratio: pl.Expr) -> pl.Expr:
    """Workspace bytes that grow with max_model_len, beyond ``gpu_pass``'s fixed part (``compressed.
    profile_workspace_bytes`` is the scalar twin).  One shared workspace buffer holds the largest request: the
    fused-MoE workspaces (``T x a_moe_t``, counted in the activation), the prefill gather ``ws_b x (cdiv(M, ratio)
    + ws_w + T)`` (``ws_b`` 0 on SM 12.x) or, on a stage with a ratio-4 layer, the indexer's K gather
    ``40 x M // 4`` rows of ``ix_d`` fp8 bytes + 4 scale bytes (+ the radix top-k scratch); so the growth is
    ``max(MoE, gather, indexer) - max(MoE, ws_b x (ws_w + T))``."""
    from . import compressed as cm

    t = pl.col("max_num_batched_tokens")
    moe = t * pl.col("a_moe_t")
    fixed = pl.max_horizontal(pl.col("ws_b") * (pl.col("ws_w") + t), moe)
    gather = pl.col("ws_b") * (pl.col("ws_w") + t) + pl.when(ratio > 0).then(pl.col("ws_b") * _cdiv(m, ratio.clip(1))).otherwise(0)
    rows = m * cm.INDEXER_BUFFER_FACTOR // 4
    idx = (_round_up(rows * pl.col("ix_d"), cm.WORKSPACE_ALIGN)
           + _round_up(rows * cm.INDEXER_SCALE_BYTES, cm.WORKSPACE_ALIGN) + cm.RADIX_TOPK_WORKSPACE)
    idx = pl.when((ratio == 4) & (pl.col("ix_d") > 0)).then(idx).otherwise(0)
    return pl.max_horizontal(gather, idx, moe) - fixed


def legacy_concurrency_blocks(m: pl.Expr, t: pl.Expr) -> pl.Expr:
    """vLLM <= 0.26's logged per-request block count for DeepSeek-V4 (``compressed.Plan.
    legacy_pages_per_request``): each group's pages x its aggregated page bytes (``cw0`` .. ``cw3``), summed,
    divided (cdiv) by the compressed group's aggregated page bytes."""
    full = _cdiv(m, pl.col("bs_full")) * pl.col("cw0")
    slides = [(_cdiv(pl.min_horizontal(w - 1 + t, m), bs) + 1) * pl.col(c)
              for w, bs, c in ((pl.col("window"), pl.col("bs_slide"), "cw1"),
                               (pl.col("window2"), pl.col("bs_slide2"), "cw2"),
                               (pl.col("window3"), pl.col("bs_slide3"), "cw3"))]
    return _cdiv(full + pl.sum_horizontal(slides), pl.col("cw0").clip(1))


def compressed_lens(k: int, fixed_kv: bool = False, max_threshold: int = BIG,
                    stage0: bool = False, legacy_concurrency: bool = False) -> tuple[list[list[pl.Expr]],
                                                                                   list[list[pl.Expr]]]:
    """DeepSeek-V4's per-length terms (rows with ``tok_conc`` 1; every other row keeps its values).

    Before ``lens_pass``: the KV blocks at this max_model_len.  vLLM reserves the prefill gather workspace
    ``PREFILL_CHUNK x (cdiv(M, ratio) + window + T) x 512`` bf16 in the profile run (deepseek_v4_attention.py
    @0a291a2e, ``attention_impl``'s dummy-run branch), so the memory left for KV shrinks with M: each slot
    loses ``ws_b x cdiv(M, wsr)`` more than ``gpu_pass`` took (its ``window + T`` rows).  Unless the KV size
    is fixed (``--kv-cache-memory-bytes``).  ``stage0``: the first stage's ``act0`` / ``av0`` (the validation
    columns) follow too, with that stage's ratio.  ``legacy_concurrency`` (vLLM <= 0.26): the logged
    concurrency and token figure divide by ``legacy_concurrency_blocks``, not the per-group sum.

    After: "GPU KV cache size" = max_concurrency x max_model_len (``_report_kv_cache_config``,
    kv_cache_planning.py @fc23e695) and the largest length that fits these blocks.  Above the largest window
    threshold ``th = window - 1 + T`` every sliding kind costs a constant, so the answer is
    ``(nb - const) // n_full x block`` when that reaches ``th``; below it a vectorised binary search over
    ``[1, th)`` (vLLM's ``_estimate_max_model_len_from_groups`` searches the same way) -- three window kinds
    with their own block sizes have no closed form there.  ``max_threshold``: the largest ``th`` of the
    chunk (sets the number of search steps)."""
    m = pl.col("max_model_len")
    t = pl.col("max_num_batched_tokens")
    on = (pl.col("tok_conc") == 1) & pl.col("_nbv").is_not_null()
    # a Gaudi's plugin runs no profile: no workspace is charged there (the per-request blocks stay vLLM's)
    cuda = 1 - pl.col("hpu")
    if fixed_kv:
        nb = pl.col("_nbv")
        ws_w = pl.lit(0.0)
    else:
        nbs = [pl.when(pl.col(f"bpb{i}") > 0)
               .then(((pl.col(f"av{i}") * GIB - _ws_rows(m, pl.col(f"wsr{i}")) * cuda) / pl.col(f"bpb{i}")).floor())
               .otherwise(None) for i in range(k)]
        nb = (pl.min_horizontal(nbs) if k > 1 else nbs[0]).fill_null(0).clip(0).cast(pl.Int64)
        ws_w = _ws_rows(m, pl.col("_wsr")) * cuda / GIB
    slot0 = []
    if stage0:
        ws0 = pl.when(on).then(_ws_rows(m, pl.col("wsr0")) * cuda / GIB).otherwise(0.0)
        slot0 = [(pl.col("act0") + ws0).alias("act0")] + ([] if fixed_kv else [(pl.col("av0") - ws0).alias("av0")])
    before = [[pl.when(on).then(nb).otherwise(pl.col("_nbv")).alias("_nbv"),
               pl.when(on).then(pl.col("kv_cache_gib") - ws_w).otherwise(pl.col("kv_cache_gib")).alias("kv_cache_gib"),
               pl.when(on).then(pl.col("activation_gib") + ws_w).otherwise(pl.col("activation_gib"))
               .alias("activation_gib"), *slot0]]
    nbv = pl.col("_nbv")
    cap = pl.col("max_pos").fill_null(BIG).cast(pl.Int64)
    kinds = [(pl.col("n_slide"), pl.col("window"), pl.col("bs_slide"))] + [
        (pl.col(f"n_slide{n}"), pl.col(f"window{n}"), pl.col(f"bs_slide{n}")) for n in ("2", "3")]
    th = pl.max_horizontal([pl.when(n > 0).then(w - 1 + t).otherwise(0) for n, w, _ in kinds])
    const = pl.sum_horizontal([n * (_cdiv(w - 1 + t, bs) + 1) for n, w, bs in kinds])
    above = ((nbv - const) // pl.col("n_full").clip(1)) * pl.col("bs_full")
    use_above = (nbv >= const) & (above >= th)
    steps = max(1, min(FIT_STEPS, int(max_threshold).bit_length() + 1))
    search = [[pl.lit(1, pl.Int64).alias("_lo"), pl.min_horizontal(cap, (th - 1).clip(1)).alias("_hi")]]
    for _ in range(steps):
        lo, hi = pl.col("_lo"), pl.col("_hi")
        mid = (lo + hi + 1) // 2
        ok = (lo < hi) & (blocks_per_request(mid, t) <= nbv)
        search.append([pl.when(ok).then(mid).otherwise(lo).alias("_lo"),
                       pl.when(lo >= hi).then(hi).when(ok).then(hi).otherwise(mid - 1).alias("_hi")])
    first = blocks_per_request(pl.lit(1, pl.Int64), t)
    fit = (pl.when((nbv <= 0) | (first > nbv)).then(0)
           .when(use_above).then(pl.min_horizontal(above, cap)).otherwise(pl.col("_lo")))
    cbpr = (pl.when(pl.col("cw0") > 0).then(legacy_concurrency_blocks(m, t)).otherwise(pl.col("_bpr"))
            if legacy_concurrency else pl.col("_bpr"))
    conc = (nbv.cast(pl.Float64) / cbpr).clip(0)
    tokens = (conc * m).floor().cast(pl.Int64).clip(0)
    after = search + [[
        pl.when(on).then(fit).otherwise(pl.col("max_model_len_fit")).alias("max_model_len_fit"),
        pl.when(on).then(tokens).otherwise(pl.col("kv_cache_tokens")).alias("kv_cache_tokens"),
        pl.when(on).then(conc).otherwise(pl.col("max_concurrency")).alias("max_concurrency")],
        [(pl.col("kv_cache_tokens") * pl.col("dp")).alias("kv_cache_tokens_total"),
         (pl.col("max_concurrency") * pl.col("dp")).alias("max_concurrency_total")]]
    return before, after


def dsa_indexer_gib(m: pl.Expr, t: pl.Expr) -> pl.Expr:
    """What a DSA model's (DeepSeek-V3.2 / GLM-5, ``dsa_ix`` > 0) lightning indexer adds to the profile run at
    max_model_len ``m``, GiB: its K-gather reservation, ``40 x m`` rows of ``dsa_ix`` fp8 bytes + 4 scale bytes
    + the 1 MiB radix top-k scratch, each rounded to 256 B (sparse_attn_indexer.py @006475fe, mla/indexer.py
    @0023368d; ``compressed.indexer_workspace_bytes(m, dsa_ix, ratio=1)`` is the scalar twin), held in the one
    WorkspaceManager buffer with the fused-MoE workspaces the activation already counts (``T x a_moe_t``): only
    what it exceeds them by.  The indexer's 512 MiB dummy logits tensor, freed at once, is not priced."""
    from . import compressed as cm

    d = pl.col("dsa_ix").fill_null(0).cast(pl.Int64)
    rows = m.cast(pl.Int64) * cm.INDEXER_BUFFER_FACTOR
    idx = (_round_up(rows * d, cm.WORKSPACE_ALIGN) + _round_up(rows * cm.INDEXER_SCALE_BYTES, cm.WORKSPACE_ALIGN)
           + cm.RADIX_TOPK_WORKSPACE).cast(pl.Float64)
    moe = t.cast(pl.Float64) * pl.col("a_moe_t").fill_null(0.0)
    return pl.when(d > 0).then((idx - moe).clip(0.0) / GIB).otherwise(0.0)
