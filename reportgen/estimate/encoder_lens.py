"""The multimodal encoder profile's terms that depend on max_model_len (the dummy video, vLLM's encoder budget,
the vision tower's own peak; a DSA indexer's gather takes the same path), as polars expressions on the per-length
rows: the KV memory, blocks, tokens and fit they leave, and the encoder's own "no KV memory" verdict.

Why a module of its own: these run only on the rows they apply to (``matrix._special_rows``; ``encoder_lens_off``
on the others), after ``exprs.util_pass`` and around ``exprs.lens_pass`` (terms before it, the verdict after);
their scalar twins are in ``encoder.py``.  Split out of ``exprs.py`` unchanged; ``exprs`` re-exports every name.
"""

from __future__ import annotations

import polars as pl

from . import overheads as oh
from .compressed_lens import dsa_indexer_gib
from .request_blocks import max_len_fit
from .tables import GIB
from .verdicts import ENCODER_FAIL

# what the per-length encoder terms read from the (layout, GPU, util) rows, and hand on (``encoder_lens``)
ENCODER_IN = ("a_enc_t", "a_add_t", "enc_item", "vid_f", "vid_p", "vid_s", "tow_t", "tow_in", "activation_gib", "n_groups",
              "max_model_len_fit", "dsa_ix", "a_moe_t", "hpu")
ENCODER_OUT = ("_nbv", "kv_cache_gib", "activation_gib", "kv_cache_tokens", "kv_cache_tokens_total",
               "max_model_len_fit")


def encoder_lens(k: int, fixed_kv: bool = False, stage0: bool = False, extensible: bool = False
                 ) -> tuple[list[list[pl.Expr]], list[list[pl.Expr]]]:
    """The multimodal encoder profile's terms that depend on max_model_len (rows with a modelled video item
    ``vid_f`` or tower peak ``tow_t``; every other row keeps its values).  ``gpu_pass`` priced
    ``max(T, image item) x a_enc_t``; here, per length M (encoder.py, the scalar twin
    ``encoder.encoder_profile_tokens``):

    - the dummy video ``vid_f x clamp((M - vid_s) // vid_f, 1, vid_p)`` tokens (0 without one;
      ``mm_video.video_patches``),
      the largest item ``max(image, video)`` and vLLM's encoder budget ``B = max(T, item)``: the budget term
      grows by ``(B - max(T, image)) x a_enc_t``;
    - the tower's own peak over the ``max(1, B // item) x item`` tokens the profile encodes in one forward,
      ``tow_t`` bytes each (``mm_video.TowerPeak``), of which the dummy inputs (``tow_in``) stay alive after it.

    ``profile_run`` runs the tower, frees its activations, then runs the text forward with the outputs cached
    (``encoder.profile_peak``): the activation is ``max(text phase, T x a_add_t + tower)``, the text phase being
    the row's activation + the budget growth + the dummy inputs.  So the term is the growth + the inputs + what
    the tower phase exceeds the text phase by (0 while the text phase binds).

    Before ``lens_pass``: each slot loses that much KV memory (blocks re-counted from ``av{i}``), the
    activation grows by it, and the tokens and the largest max_model_len that fits follow the blocks left
    (the fit is the one at this length's item: a shorter length has a smaller video, so it is a lower
    bound there).  With a fixed KV size (``--kv-cache-memory-bytes``) only the activation grows.  After:
    a "no KV memory" verdict that only this term causes gets the encoder's own reason (``ENCODER_FAIL``).
    ``stage0``: the first stage's ``act0`` / ``av0`` (the validation columns) follow too.

    ``extensible`` (vLLM 0.34+'s extensible KV cache, ``util_pass``): the term is part of the profile run's peak,
    the transient T the sizing keeps free (vllm 0.34.0 sdist v1/worker/gpu_worker.py:945-948, ``peak_activation_
    memory``), so it also widens the margin ``max(floor, 0.75 T)`` (v1/worker/extensible_kv_cache.py:615): a slot
    keeps ``min(av, am - 0.75 x) - x`` (``am<i>``: the headroom side less 0.75 x the length-independent T,
    ``gpu_pass``; ``_kvm`` the worst slot's) instead of ``av - x``.

    A DSA model's indexer K gather (``dsa_indexer_gib``, rows with ``dsa_ix``) grows with max_model_len the same
    way and takes the same path (its term added to the row's; no model has both)."""
    m = pl.col("max_model_len")
    t = pl.col("max_num_batched_tokens")
    f = pl.col("vid_f").fill_null(0).cast(pl.Int64)
    image = pl.col("enc_item").fill_null(0).cast(pl.Int64)
    steps = (m - pl.col("vid_s").fill_null(0).cast(pl.Int64)) // f.clip(1)
    video = pl.when(f > 0).then(f * pl.min_horizontal(pl.max_horizontal(steps, 1),
                                                      pl.col("vid_p").fill_null(0).cast(pl.Int64))).otherwise(0)
    item = pl.max_horizontal(image, video)
    budget = pl.max_horizontal(t, item)
    encoded = pl.when(item > 0).then(pl.max_horizontal(budget // item.clip(1), 1) * item).otherwise(0)
    enc_t = encoded.cast(pl.Float64)
    text = ((budget - pl.max_horizontal(t, image)).cast(pl.Float64) * pl.col("a_enc_t").fill_null(0.0)
            + enc_t * pl.col("tow_in").fill_null(0.0)) / GIB
    tower = (t.cast(pl.Float64) * pl.col("a_add_t").fill_null(0.0) + enc_t * pl.col("tow_t").fill_null(0.0)) / GIB
    dsa = dsa_indexer_gib(m, t)
    extra = text + (tower - pl.col("activation_gib") - text).clip(0.0) + dsa
    # (not on a Gaudi: the vllm-gaudi plugin runs no profile, so no encoder or indexer transient is charged)
    on = (((f > 0) | (pl.col("tow_t").fill_null(0.0) > 0) | (pl.col("dsa_ix").fill_null(0) > 0))
          & pl.col("_nbv").is_not_null() & (pl.col("hpu") == 0))
    x = pl.col("_enc_x")
    first = [pl.when(on).then(extra).otherwise(0.0).alias("_enc_x"),
             pl.when(on).then(dsa).otherwise(0.0).alias("_dsa_x")]

    def left(av: pl.Expr, am: str) -> pl.Expr:
        """KV memory a slot keeps once the transient grows by x (see the docstring)."""
        if extensible and not fixed_kv:
            return pl.min_horizontal(av, pl.col(am) - oh.EXTENSIBLE_MARGIN_FRACTION * x) - x
        return av - x

    slot0 = [(pl.col("act0") + x).alias("act0")] + ([] if fixed_kv else [left(pl.col("av0"), "am0").alias("av0")]) \
        if stage0 else []
    if fixed_kv:
        second = [(pl.col("activation_gib") + x).alias("activation_gib")]
        return [first, second + slot0], []
    nbs = [pl.when(pl.col(f"bpb{i}") > 0).then((left(pl.col(f"av{i}"), f"am{i}") * GIB / pl.col(f"bpb{i}")).floor())
           .otherwise(None) for i in range(k)]
    nb = (pl.min_horizontal(nbs) if k > 1 else nbs[0]).fill_null(0).clip(0).cast(pl.Int64)
    second = [pl.when(on).then(nb).otherwise(pl.col("_nbv")).alias("_nbv"),
              left(pl.col("kv_cache_gib"), "_kvm").alias("kv_cache_gib"),
              (pl.col("activation_gib") + x).alias("activation_gib")]
    nbv = pl.col("_nbv")
    tokens = ((nbv // pl.col("n_groups").clip(1)) * pl.col("token_block")).clip(0)
    third = [pl.when(on).then(tokens).otherwise(pl.col("kv_cache_tokens")).alias("kv_cache_tokens"),
             pl.when(on).then(max_len_fit(nbv, t)).otherwise(pl.col("max_model_len_fit")).alias("max_model_len_fit")]
    fourth = [(pl.col("kv_cache_tokens") * pl.col("dp")).alias("kv_cache_tokens_total"), *slot0]
    # the encoder's own reason only where the encoder's part (not a DSA indexer's) takes the KV memory
    after = [[pl.when((pl.col("_pre") == 1) & (x - pl.col("_dsa_x") > 0) & (pl.col("kv_cache_gib") + x - pl.col("_dsa_x") > 0))
              .then(pl.lit(ENCODER_FAIL, pl.UInt16)).otherwise(pl.col("_pre")).alias("_pre")]]
    return [first, second, third, fourth], after



def encoder_lens_off(stage0: bool = False) -> list[list[pl.Expr]]:
    """What ``encoder_lens`` does to a row it does not apply to (``on`` false: the term ``_enc_x`` is 0.0):
    the activation (and with ``stage0`` the first stage's ``act0``) plus that 0.0 -- which turns a -0.0
    into 0.0, so it is kept --; every other column it writes keeps its value (``x - 0.0`` is ``x`` to the
    bit; the blocks, tokens, fit and ``_pre`` are the row's own).  ``matrix._prepare`` runs the full terms
    only on the rows they apply to and this on the others."""
    x = pl.col("_enc_x")
    return [[pl.lit(0.0, pl.Float64).alias("_enc_x")],
            [(pl.col("activation_gib") + x).alias("activation_gib")] + ([(pl.col("act0") + x).alias("act0")]
                                                                        if stage0 else [])]
