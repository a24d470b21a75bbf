"""vLLM's per-request KV block count and its inverse, the largest max_model_len a block count holds, as polars
expressions over the layout row's KV groups (``n_full`` / ``bs_full``, the window and chunk kinds, the state groups).

Why a module of its own: every per-length pass uses them -- ``exprs.util_pass`` / ``lens_pass``,
``compressed_lens`` (DeepSeek-V4's binary search) and ``encoder_lens`` (the fit after the encoder term) -- and
those passes live in separate modules that must not import ``exprs``.  Split out of ``exprs.py`` unchanged;
``exprs`` re-exports every name.
"""

from __future__ import annotations

import polars as pl

BIG = 2**31 - 1


def _cdiv(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    return -((-a) // b)



def blocks_per_request(m: pl.Expr, t: pl.Expr) -> pl.Expr:
    """vLLM ``max_memory_usage_bytes`` in blocks, summed over the KV groups."""
    full = pl.col("n_full") * _cdiv(m, pl.col("bs_full"))
    slide = pl.col("n_slide") * (_cdiv(pl.min_horizontal(pl.col("window") - 1 + t, m), pl.col("bs_slide")) + 1)
    chunk = pl.col("n_chunk") * _cdiv(pl.min_horizontal(pl.col("chunk") + t, m), pl.col("bs_chunk"))
    return full + slide + chunk + extra_slides(m, t) + state_blocks()


def extra_slides(m: pl.Expr, t: pl.Expr) -> pl.Expr:
    """DeepSeek-V4's second and third sliding kinds (compressor states: window 8 / block 4 and window 128 /
    block 8 beside the latent's 128 / 64; kvcache.KvGroups), 0 for every other model."""
    out = pl.lit(0, pl.Int64)
    for n in ("2", "3"):
        out = out + pl.col(f"n_slide{n}") * (
            _cdiv(pl.min_horizontal(pl.col(f"window{n}") - 1 + t, m), pl.col(f"bs_slide{n}")) + 1)
    return out


def state_blocks() -> pl.Expr:
    """Blocks every request holds in the state groups whatever its length (0 without state layers)."""
    return pl.col("n_state") * pl.col("state_blocks")


FIT_TERMS = ("_fit_th", "_fit_const", "_fit_first", "_fit_sb")


def fit_terms(t: pl.Expr) -> list[pl.Expr]:
    """The terms of ``max_len_fit`` that do not depend on the blocks (the layout row's groups and ``t``
    only): the window threshold, the window groups' constant cost above it, one token's blocks, the state
    blocks -- as columns ``FIT_TERMS``, so ``gpu_pass`` evaluates them once per (layout row, GPU class)
    rather than the utilization pass on every (layout, GPU, util) row."""
    ns, nc = pl.col("n_slide"), pl.col("n_chunk")
    ths = (pl.when(ns > 0).then(pl.col("window") - 1 + t)
           .when(nc > 0).then(pl.col("chunk") + t).otherwise(0))
    const = (ns * (_cdiv(pl.col("window") - 1 + t, pl.col("bs_slide")) + 1)
             + nc * _cdiv(pl.col("chunk") + t, pl.col("bs_chunk")))
    first = blocks_per_request(pl.lit(1, pl.Int64), t)
    return [e.alias(n) for e, n in zip((ths, const, first, state_blocks()), FIT_TERMS)]


def max_len_fit(nb: pl.Expr, t: pl.Expr, terms: bool = False) -> pl.Expr:
    """Largest M with blocks_per_request(M) <= nb, closed form (vLLM binary-searches the same).

    One window kind per model (vLLM refuses sliding + chunked together), so two
    regimes: above the window threshold the window groups cost a constant; below
    it every group grows with M.  State groups cost a constant in both (taken off ``nb``).
    ``terms``: read ``fit_terms``' columns instead of evaluating them (the same integers).
    """
    ths, const, first, sb = [pl.col(n) for n in FIT_TERMS] if terms else [e.meta.undo_aliases() for e in fit_terms(t)]
    nb_all = nb
    nb = nb - sb
    nf, ns, nc = pl.col("n_full"), pl.col("n_slide"), pl.col("n_chunk")
    bs = pl.col("bs_full")
    cap = pl.col("max_pos").fill_null(BIG).cast(pl.Int64)
    above = (pl.when(nf > 0).then(((nb - const) // pl.max_horizontal(nf, 1)) * bs)
             .otherwise(pl.when(nb >= const).then(cap).otherwise(-1)))
    below = pl.min_horizontal(((nb - ns) // pl.max_horizontal(nf + ns + nc, 1)) * bs, ths)
    m = pl.when((above >= ths) & (nb >= const)).then(above).otherwise(below)
    return pl.when((nb_all <= 0) | (first > nb_all)).then(0).otherwise(pl.min_horizontal(m, cap)).clip(0)
