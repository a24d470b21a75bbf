"""The per-cell arithmetic as polars expressions (vLLM's budget, blocks, fit verdict).

Why expressions: a job is up to tens of millions of cells; each cell is a few
dozen arithmetic operations on columns, which polars runs vectorised and in
parallel.  Two passes keep per-cell work small:

- ``gpu_pass`` on (layout x GPU) rows: GPU-level rules, scheduler limits, the
  activation peak and the fixed (non-KV) memory of every stage slot;
- ``util_pass`` on (layout x GPU x util) rows: the budget, KV blocks per slot
  and their minimum (vLLM keeps the smallest stage), the worst slot, tokens and
  the largest context;
- ``lens_pass`` on (layout x GPU x util x max_model_len) rows: blocks per
  request, what limits concurrency, the concurrency that fits and the verdict
  codes that do not depend on the concurrency target;
- ``cell_pass`` on the full cells (x concurrency): KV needed, headroom, the
  verdict code, then status and reason gathered from string tables by id.

Row strings (reasons with numbers) are built once per (layout x GPU x util)
row, and only on the rows some cell picks them for (``reason_table``: ~18 k of
the 940 k in the benchmark); no string is formatted per cell.

Input columns are made by ``reportgen.estimate.tables`` and ``reportgen.matrix``.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from . import encoder as enc
from . import overheads as oh
from .tables import GIB

TIGHT_PCT = 10.0
BIG = 2**31 - 1


def _cdiv(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    return -((-a) // b)


def graph_captured(i: int | str) -> pl.Expr:
    """CUDA-graph memory one slot captures: the fitted 51-size figure ``g{i}`` with its per-layer
    part scaled by the number of capture sizes (``g_n`` = sizes / 51, ``g_on`` = any graphs;
    profiles.graph_scale -- 0 with --enforce-eager), times the runner's share ``g_r`` (Model Runner V2:
    oh.MRV2_GRAPH_RATIO)."""
    g = pl.col(f"g{i}") if isinstance(i, int) else pl.col(i)
    n = pl.when(pl.col("g_big") > 0).then(pl.col("g_n_big")).otherwise(pl.col("g_n"))  # gpt-oss: max 1024
    return (pl.col("g_on") * oh.G_BASE + (g - oh.G_BASE) * n).clip(0) * pl.col("g_r")


def gpu_pass(k: int, max_nodes: int, allow_cross_node_tp: bool, extensible: bool = False
             ) -> tuple[list[pl.Expr], tuple[pl.Expr, pl.Expr]]:
    """Columns per (layout, GPU): gpus, nodes, GPU rules, activation and fixed memory per slot;
    and apart, the reason of a row whose new status ``_status`` is set, as two expressions, each
    evaluated only on the rows it is the reason of (``matrix._pre_codes``): ``rules`` -- the layout's
    own ``pre_reason`` when it has a ``pre_status``, else the rule that made the row ``invalid_layout``
    -- and ``load`` -- the out-of-memory-while-loading reason of a ``no_fit`` row without a layout
    status.  A few distinct strings: formatting them on every row cost a third of the pass, and
    every branch's format on every flagged row most of what was left.

    The version profile arrives as columns: ``g_bf`` (share of the captured graph memory taken
    from the budget), ``gdn_t`` (bytes per batched token of the GDN chunk-scan transient
    the 0.26+ graph estimate holds: the estimate is ``max(g_bf x graphs, T x gdn_t)``), ``g_n`` /
    ``g_on`` (capture-size scaling, per GPU row: it follows max_num_seqs).

    ``extensible`` (vLLM 0.34+'s extensible KV cache, ``job.extensible_kv_cache``): no graph estimate -- the graphs
    are captured before the cache is sized and measured in full (``gc``); the transient the sizing keeps free is
    ``T`` = the activation peak plus, for GDN hybrids, the chunk-scan live set the sizing warm-up's real prefill step
    runs (the profile run skips it; ``tr<i>``, ``util_pass``); nothing is allocated after the sizing, so
    ``_outside`` is 0 (the start-up context stays in ``_ctx`` for the device-headroom bound)."""
    t = pl.col("max_num_batched_tokens").cast(pl.Float64)
    r = pl.min_horizontal(pl.col("max_num_seqs"), pl.col("max_num_batched_tokens")).cast(pl.Float64)
    gpus = pl.col("tp") * pl.col("pp") * pl.col("dp")
    gpn = pl.col("gpus_per_node")
    fwd = t * pl.col("a_fwd_t") + r * pl.col("a_state_r")     # a_state_r: GDN prefill buffers (0.10 profile)
    # encoder profile over vLLM's encoder budget max(T, largest item) (encoder.encoder_budget)
    add = t * pl.col("a_add_t") + pl.max_horizontal(t, pl.col("enc_item")) * pl.col("a_enc_t")
    a_other = (fwd + add) / GIB
    core_last = pl.max_horizontal(fwd, t * pl.col("a_hid_t") + r * pl.col("a_smp_r")) / GIB
    a_last = core_last + add / GIB
    g_est = t * pl.col("gdn_t") / GIB     # GDN chunk-scan transient in the 0.26+ graph estimate (#50780)
    gcap_max = graph_captured("g_max")
    # DSA on FlashMLA-sparse with a bf16 cache (``fm_qc`` bytes a batched token at ``fm_h`` heads a rank; per GPU and
    # version ``fmq_on``, the fewest heads FlashMLA-sparse runs at ``fmq_min_h`` and the head padding ``fmq_pad``,
    # tables.flashmla_q_concat_on): the q-concat buffer kept from model construction is load-time memory on every
    # stage's rank
    h = pl.col("fm_h").fill_null(0)
    pad = pl.col("fmq_pad")
    qc = (pl.when(h <= 0).then(0.0).when(pad > 0).then(pl.col("fm_qc") / h * (((h + pad - 1) // pad) * pad))
          .otherwise(pl.col("fm_qc")))
    fmq = pl.when(h >= pl.col("fmq_min_h")).then(t * qc * pl.col("fmq_on") / GIB).otherwise(0.0)

    def w(i: int) -> pl.Expr:
        return pl.col(f"w{i}") + fmq

    w_max = pl.max_horizontal([w(i) for i in range(k)]) if k > 1 else w(0)
    # the GPU's interconnect (catalog; overheads.comm_terms): without NVLink SHARP the TP group's
    # non-torch loses its NVLS share; above TP 2 on GPUs not all NVLink-linked vLLM builds no custom
    # all-reduce, whose buffers the start-up context then lacks
    nt = pl.col("nt") - (1 - pl.col("nt_fit")) * pl.col("nt_nvls")
    # (c) weights alone exceed the device: vLLM runs out of memory while loading
    ctx = pl.col("ctx") - pl.when(pl.col("tp") > pl.col("nvl_group")).then(pl.col("ca")).otherwise(0.0)
    load_oom = (w_max + ctx) > pl.col("gpu_memory_gib")
    rules = pl.when(pl.col("pre_status").is_not_null()).then(pl.col("pre_reason"))
    if not allow_cross_node_tp:
        rules = rules.when(pl.col("tp") > gpn).then(
            pl.format("tp ({}) > gpus_per_node ({}): cross-node TP not allowed", pl.col("tp"), gpn))
    rules = rules.when(gpus > gpn * max_nodes).then(
        pl.format("tp*pp*dp ({}) GPUs > max_nodes ({}) x gpus_per_node ({})", gpus, pl.lit(max_nodes), gpn))
    # a multimodal prefix LM's largest item above max_num_batched_tokens (after vLLM 0.22+ raised a defaulted
    # value, matrix._raise_batched): vLLM refuses to start (encoder.unchunked_item; 0 / absent = no check)
    item = pl.col("mm_unchunked").fill_null(0)
    rules = rules.when(item > pl.col("max_num_batched_tokens")).then(
        pl.format(enc.UNCHUNKED_REASON, item, pl.col("max_num_batched_tokens"), item,
                  pl.col("max_num_batched_tokens"), pl.col("mm_items")))
    load_reason = pl.format("out of memory while loading weights: {} GiB per GPU + {} GiB CUDA context "
                            "> {} GiB device memory (short by {} GiB)",
                            w_max.round(2), ctx.round(2), pl.col("gpu_memory_gib").round(2),
                            (w_max + ctx - pl.col("gpu_memory_gib")).round(2))
    status = (pl.when(pl.col("pre_status").is_not_null()).then(pl.col("pre_status"))
              .when(rules.otherwise(None).is_not_null()).then(pl.lit("invalid_layout"))
              .when(load_oom & pl.col("w0").is_not_null()).then(pl.lit("no_fit"))
              .otherwise(None))
    out = [
        gpus.cast(pl.Int32).alias("gpus"),
        ((gpus + gpn - 1) // gpn).cast(pl.Int32).alias("nodes"),
        status.alias("_status"),       # the layout's pre_status, or this pass's verdict
        nt.alias("nt"),                # this GPU's non-torch (util_pass reports it)
        (pl.col("price_gpu_hr") * gpus).alias("price_usd_hr"),
        a_other.alias("_a_other"),
        a_last.alias("_a_last"),
        # (b) outside the budget, in vLLM's start-up order: the start-up snapshot's memory (CUDA
        # context; NCCL with a group), then -- after the KV cache took budget - (weights + activation +
        # non-torch) -- the graph memory the estimate did not reserve and the sampler warm-up over
        # max_num_seqs rows of logits, which reuse the forward / sampler peak the profile run gave back
        # (not the kept fused-MoE workspaces, PP buffers and encoder profile: ``a_add_t``)
        (pl.lit(0.0) if extensible else
         (ctx + ((gcap_max * (1 - pl.col("g_bf"))).clip(0) + r * pl.col("warm_r") / GIB - core_last).clip(0)))
        .alias("_outside"),
        ctx.alias("_ctx"),
        # the blocks-independent terms of the utilization pass's ``max_len_fit``
        *fit_terms(pl.col("max_num_batched_tokens")),
    ]
    # DeepSeek-V4's profile-run workspace, the part that does not grow with max_model_len: the prefill gather's
    # PREFILL_CHUNK x (window + T) x head_dim bf16 (``ws_b`` bytes a row) and, on SM 12.x, FlashInfer's own
    # workspace (``ws_fi``); compressed_lens adds what grows with M (``_ws_rows``)
    # -- one WorkspaceManager buffer with the fused-MoE workspaces ``a_add_t`` already holds (``a_moe_t``):
    # only what the gather adds beyond them
    # -- and, for a Qwen GDN hybrid under vLLM 0.33+ on a GPU running FlashInfer's GDN prefill in align mode, the
    # float32 prefill checkpoint buffer cdiv(T, block) x ``ck_b`` (hybrid.py "FlashInfer GDN prefill checkpoints":
    # vllm 0.34.0 sdist, model_executor/layers/mamba/gdn/qwen_gdn_linear_attn.py:924-938 / :1545-1547), taken from
    # the same WorkspaceManager buffer (never beside a DeepSeek-V4 gather: one of the two is 0)
    moe = t * pl.col("a_moe_t")
    ck = (pl.when(pl.col("ck_b") > 0).then(pl.col("ck_b") * _cdiv(t, pl.col("token_block").clip(1)))
          .otherwise(0))
    ws_fixed = ((pl.max_horizontal(pl.col("ws_b") * (pl.col("ws_w") + t) + ck, moe) - moe) + pl.col("ws_fi")) / GIB
    for i in range(k):
        act = pl.when(pl.col(f"last{i}")).then(a_last).otherwise(a_other) + ws_fixed
        gc = graph_captured(i)
        # the estimate is the pool's growth: the transient's blocks are reused by the graphs, so it
        # reserves the larger of the two (profiles.py, 0.26)
        est = pl.max_horizontal(pl.col("g_bf") * gc, g_est)
        if extensible:
            tr = act + g_est
            out.append((w(i) + tr + nt + gc).alias(f"fix{i}"))
            out.append(tr.alias(f"tr{i}"))
            # the device-headroom side less the fractional margin, before the floor: a per-length transient x
            # (``encoder_lens``) leaves min(av, am - 0.75 x) - x of KV memory
            out.append((pl.col("gpu_memory_gib") - ctx - (w(i) + tr + nt + gc)
                        - oh.EXTENSIBLE_MARGIN_FRACTION * tr).alias(f"am{i}"))
        else:
            out.append((w(i) + act + nt + est).alias(f"fix{i}"))
        out.append(w(i).alias(f"w{i}"))
        out.append(act.alias(f"act{i}"))
        out.append(gc.alias(f"gc{i}"))
    return out, (rules.otherwise(None).alias("pre_reason"), load_reason.alias("pre_reason"))


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


def _pick(k: int, name: str, idx: pl.Expr) -> pl.Expr:
    e = pl.col(f"{name}0")
    if k == 1:
        return e
    chain = pl.when(idx == 0).then(pl.col(f"{name}0"))
    for i in range(1, k):
        chain = chain.when(idx == i).then(pl.col(f"{name}{i}"))
    return chain.otherwise(None)


# the worst slot's columns ``matrix._prepare`` gathers by the slot index ``_w`` (``util_pass(gathered=True)``
# then reads them as ``_g_<name>``) instead of a when-chain over the slots per row
PICKED = ("w", "act", "gc", "bpb", "tokb", "stb", "label", "wsr")


def util_pass(k: int, kv_fixed_gib: float | None = None, gathered: bool = False, extensible: bool = False
              ) -> list[list[pl.Expr]]:
    """Per (layout, GPU, utilization): budget, KV blocks per slot, their minimum, the worst slot.

    Dependent column batches, to be applied in order.  Nothing here depends on max_model_len or the
    concurrency target, so it runs before the last (largest) cross join.  ``gathered`` (with ``k > 1``): the
    last batch reads the worst slot's ``PICKED`` columns as ``_g_<name>``, which the caller adds after the
    batch that makes ``_w`` (the same values as ``_pick``: slot ``_w``'s column, nulls included).

    ``kv_fixed_gib`` (vLLM ``--kv-cache-memory-bytes``): every GPU reserves exactly that for its
    KV cache and vLLM skips the utilization-based budget (``determine_available_memory`` returns
    the bytes as given: "This does not respect the gpu_memory_utilization config"); the start-up
    then fails when the fixed KV plus everything else exceeds the GPU (``_outside_fail``, verdict
    code ``FIXED_KV_FAIL``), and headroom is relative to the engine's footprint (fixed KV + the
    largest non-KV stage), which stands in for ``util x total``.

    ``extensible`` (vLLM 0.34+'s default, ``gpu_pass``): vLLM sizes the cache after warm-up and graph capture from
    measured memory -- ``measure_kv_cache_bytes`` (vllm 0.34.0 sdist v1/worker/extensible_kv_cache.py:592-618):
    ``min(requested - non-KV used, free + committed - margin) - T`` with ``margin = max(floor, 0.75 T)``, the floor
    1 GiB on CUDA and 3 GiB on ROCm (:64, the GPU table's ``ext_floor``: overheads.extensible_margin_floor_gib).  Here
    requested = util x total, non-KV used = weights + non-torch + captured graphs (everything since the start-up
    snapshot), free + committed = total - start-up context (``_ctx``) - non-KV used, T = ``tr<i>``; ``fix<i>``
    already holds non-KV used + T.  Nothing is allocated after the sizing: no out-of-memory margin to check.
    Approximation: vLLM's T is the sizing steps' allocated peak minus what stays allocated, while ``tr<i>`` is the
    whole modelled activation -- buffers the model keeps (workspaces, kept hidden states) also widen the margin here
    (by 0.75 x them, once T is above 1.33 GiB).
    The sizing's other terms add nothing at vLLM's defaults: ``KV_CACHE_NON_TORCH_RESERVE_BYTES`` (:71) only caps
    torch's allocator after the sizing (:684-692), out of the free memory the margin left, and is not taken from the
    KV bytes; the multimodal IPC reserve (``reserve_mm_ipc_gpu_memory``, :677-681) is
    ``--mm-ipc-gpu-memory-gb`` (default 0) plus GPU video decoders (default backend opencv: none).  Not modelled:
    torch's measured reservation growth beyond T (:617, fragmentation of the sizing steps) and the VMM granule
    rounding of ``blocks_within`` (:305-318, at most one driver granule a segment).  docs/decisions.md, branch ext34.
    """
    budget = pl.col("gpu_memory_utilization") * pl.col("gpu_memory_gib")
    if kv_fixed_gib is not None:       # the engine's own footprint stands in for util x total
        budget = pl.max_horizontal([pl.col(f"fix{i}") for i in range(k)]) + float(kv_fixed_gib)
    first = [budget.alias("_budget")]
    for i in range(k):
        avail = budget - pl.col(f"fix{i}") if kv_fixed_gib is None else pl.lit(float(kv_fixed_gib))
        if extensible and kv_fixed_gib is None:
            margin = pl.max_horizontal(pl.col("ext_floor"), oh.EXTENSIBLE_MARGIN_FRACTION * pl.col(f"tr{i}"))
            avail = pl.min_horizontal(avail, pl.col("gpu_memory_gib") - pl.col("_ctx") - pl.col(f"fix{i}") - margin)
        first.append(avail.alias(f"av{i}"))
        nb = pl.when(pl.col(f"bpb{i}") > 0).then((avail * GIB / pl.col(f"bpb{i}")).floor()).otherwise(None)
        first.append(nb.alias(f"nb{i}"))
    nbs = [pl.col(f"nb{i}") for i in range(k)]
    nb_min = pl.min_horizontal(nbs) if k > 1 else nbs[0]
    # the binding slot: fewest blocks; ties -> the first (lowest stage)
    idx = pl.lit(0)
    if k > 1:
        idx = pl.when(pl.col("nb0") == pl.col("_nb")).then(0)
        for i in range(1, k):
            idx = idx.when(pl.col(f"nb{i}") == pl.col("_nb")).then(i)
        idx = idx.otherwise(0)
    t = pl.col("max_num_batched_tokens")
    ok = pl.col("pre_status").is_null()

    def pick(name: str) -> pl.Expr:
        return pl.col(f"_g_{name}") if gathered and k > 1 and name in PICKED else _pick(k, name, pl.col("_w"))

    second = [nb_min.fill_null(0).cast(pl.Int64).alias("_nb")]
    nb = pl.col("_nb")
    # room left for what vLLM allocates after profiling: (1 - util) x total, or with a fixed KV size
    # the GPU minus (largest non-KV stage + fixed KV)
    if extensible and kv_fixed_gib is None:      # sized from measured memory: nothing left to run out of
        outside_margin = pl.lit(NO_OUTSIDE_MARGIN)
    elif kv_fixed_gib is None:
        outside_margin = (1 - pl.col("gpu_memory_utilization")) * pl.col("gpu_memory_gib") - pl.col("_outside")
    else:
        outside_margin = (pl.col("gpu_memory_gib") - pl.max_horizontal([pl.col(f"fix{i}") for i in range(k)])
                          - float(kv_fixed_gib) - pl.col("_outside"))
    third = [
        pick("w").alias("weights_gib"),
        pick("act").alias("activation_gib"),
        pl.col("nt").alias("non_torch_gib"),
        pick("gc").alias("cuda_graph_gib"),
        pick("av").alias("kv_cache_gib"),
        *([pick("am").alias("_kvm")] if extensible and kv_fixed_gib is None else []),
        pl.when(ok).then(pick("bpb")).alias("_bpb"),        # null for invalid rows: the
        pl.when(ok).then(nb).alias("_nbv"),                          # per-cell terms stay null
        pick("tokb").alias("kv_bytes_per_token"),
        pick("stb").alias("state_bytes_per_seq"),
        pick("label").alias("worst_rank"),
        pick("wsr").alias("_wsr"),
        pl.when(ok).then(((nb // pl.col("n_groups").clip(1)) * pl.col("token_block")).clip(0))
        .alias("kv_cache_tokens"),
        pl.when(ok).then(max_len_fit(nb, t, terms=True)).alias("max_model_len_fit"),
        # out of memory at start-up only beyond the tight band: the outside terms are estimates
        # (CUDA context, warm-up buffers), so within +-TIGHT_OUTSIDE_GIB the cell is "tight".
        # With a fixed KV size (--kv-cache-memory-bytes) the bound is the whole GPU instead.
        (-outside_margin > (TIGHT_OUTSIDE_GIB if kv_fixed_gib is None else 0.0)).alias("_outside_fail"),
        outside_margin.alias("_outside_margin"),
    ]
    return [first, second, [idx.alias("_w")], third]


def row_reasons() -> list[pl.Expr]:
    """The reasons that carry a number of their (layout, GPU, utilization) row (``util_pass``'s
    columns): built by ``reason_table`` only on the rows some cell picks them for."""
    return [
        pl.format("one request of max_model_len does not fit in the KV cache: vLLM refuses to start; "
                  "the largest max_model_len that fits is {}", pl.col("max_model_len_fit"))
        .alias("_r_len"),
        # codes 3 (out of memory) and 6 (tight) depend on this row only: one string for either
        pl.when(pl.col("_outside_fail")).then(
            pl.format("memory outside the budget (allocated after profiling: CUDA context, graphs not reserved "
                      "in the budget, sampler warm-up) {} GiB > (1 - util) x total {} GiB, short by {} GiB: out "
                      "of memory at start-up", pl.col("_outside").round(2),
                      ((1 - pl.col("gpu_memory_utilization")) * pl.col("gpu_memory_gib")).round(2),
                      (-pl.col("_outside_margin")).round(2)))
        .otherwise(
            pl.format("memory outside the budget (allocated after profiling) {} GiB vs (1 - util) x total {} GiB: "
                      "margin {} GiB, near the out-of-memory boundary", pl.col("_outside").round(2),
                      ((1 - pl.col("gpu_memory_utilization")) * pl.col("gpu_memory_gib")).round(2),
                      pl.col("_outside_margin").round(2)))
        .alias("_r_out"),
    ]


# concurrency_limited_by values, by code: a request's blocks are mostly KV tokens (attention groups) or
# mostly recurrent-state blocks (hybrids' state groups); or the scheduler's max_num_seqs caps first
LIMITS = ("kv_tokens", "state_slots", "max_num_seqs")

# verdict codes -> (status, reason); 0 = fits.  Numeric codes then one lookup: a when-chain of
# string literals costs ~10x more per cell than this (measured on 2.6 M cells).
VERDICTS = (
    ("fits", ""),
    ("no_fit", "no memory left for the KV cache: weights + activation + non-torch (+ graphs) exceed the budget"),
    ("no_fit", "one request of max_model_len does not fit in the KV cache"),
    ("no_fit", "memory outside the budget: CUDA context + graphs + sampler warm-up exceed (1 - util) x total"),
    ("no_fit", "the target concurrency does not fit in the KV cache"),
    ("tight", "KV headroom under 10 %"),
    ("tight", "memory allocated after profiling is near (1 - util) x total"),
    ("no_fit", "kv_cache_memory_bytes + weights + activation + non-torch + graphs + CUDA context exceed the GPU "
               "(a fixed KV size skips vLLM's utilization budget)"),
    ("no_fit", "no memory left for the KV cache: the multimodal encoder profile takes it -- vLLM runs the vision "
               "tower on its largest dummy item (for a video-capable Qwen-VL, a video sized by max_model_len) in "
               "one forward and fails at start-up (\"No available memory for the cache blocks\"); a smaller "
               "max_model_len or limit_mm_per_prompt video=0 shrinks the item"),
)
FIXED_KV_FAIL = 7
ENCODER_FAIL = 8
# codes whose reason carries a number of their row (built in util_pass, picked per cell)
DYNAMIC_REASONS = {2: "_r_len", 3: "_r_out", 6: "_r_out"}
# band around (1 - util) x total in which a start is called tight rather than fits / no_fit: the
# outside terms are estimates (start-up snapshot, graphs, warm-up buffers, allocator slack).  0.5 GiB =
# the model's error on the one logged start it cannot place: gpt-oss-20b on one H100 at util 0.95
# failed in the sampler warm-up short by 0.23 GiB (row G01: 786 MiB asked, 552 MiB free) where the
# model leaves +0.22 GiB.  Every logged successful start sits at >= 0 (worst: row 87, Llama-3.3-70B
# fp8 TP 2, +0.04) and the TP 2 failure G02 at -0.73 (overheads.py, "Memory outside the budget")
TIGHT_OUTSIDE_GIB = 0.5
# ``_outside_margin`` of a job whose KV cache vLLM sizes from measured memory (0.34+): no allocation follows the
# sizing, so the out-of-memory-after-profiling verdicts (codes 3 / 6) never apply
NO_OUTSIDE_MARGIN = 1e9


def verdict_codes(pre: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """All (status, reason) pairs of a matrix: the verdicts, then its layouts' own pairs
    (invalid_layout / unsupported with their reasons), indexed by ``_pcode``."""
    return list(VERDICTS) + [(s, r or "") for s, r in pre]


def length_reason(max_model_len: int, limit: int) -> str:
    return (f"max_model_len {max_model_len} exceeds the model's maximum {limit} "
            f"(vLLM refuses to start unless VLLM_ALLOW_LONG_MAX_MODEL_LEN=1)")


def length_codes(limits: list[int], lens: list[int], first: int) -> tuple[list[tuple[str, str]], pl.DataFrame]:
    """The (status, reason) pairs of every (model limit, max_model_len) pair vLLM refuses, numbered
    from ``first``, and the table ``(max_pos, max_model_len) -> _lcode`` the matrix joins per cell
    (a few rows: distinct limits x context axis values; no string is built per cell)."""
    pairs = sorted({(int(lim), int(m)) for lim in limits if lim for m in lens if m > lim})
    codes = [("invalid_layout", length_reason(m, lim)) for lim, m in pairs]
    table = pl.DataFrame({"max_pos": [p[0] for p in pairs], "max_model_len": [p[1] for p in pairs],
                          "_lcode": list(range(first, first + len(pairs)))},
                         schema={"max_pos": pl.Int64, "max_model_len": pl.Int64, "_lcode": pl.UInt16})
    return codes, table


def lens_pass(codes: list[tuple[str, str]] | None = None, fixed_kv: bool = False,
              conc_tokens: bool = False) -> list[list[pl.Expr]]:
    """Per (layout, GPU, utilization, max_model_len) row, before the concurrency axis: blocks per
    request, what limits concurrency, the verdict codes that do not depend on the concurrency target
    (``_pre``; null when the target decides), the concurrency that fits; the code when nothing else fails
    (``_fb``: tight outside-budget margin or fits) is the (layout, GPU, utilization) row's (``fallback_code``).

    The verdict, in order: a layout's own ``_pcode`` (invalid or unsupported) wins, then ``_lcode``
    (max_model_len above the model's derived maximum, which vLLM refuses -- see ``length_codes``),
    then no KV memory (1), one request does not fit (2), out of memory outside the budget (3, or
    ``FIXED_KV_FAIL`` with a fixed KV size); per cell (``cell_pass``) the target concurrency does not
    fit (4), KV headroom under 10 % (5); else ``_fb``: outside-budget margin under
    ``TIGHT_OUTSIDE_GIB`` (6) or fits (0).

    Invalid and unsupported rows carry null ``_nbv`` / ``_bpb``, so every per-cell term is null
    for them without a per-cell branch.  ``conc_tokens``: the version logs "GPU KV cache size" as
    ``int(max_concurrency x max_model_len)`` (``VllmProfile.tokens_from_concurrency``, 0.21+)."""
    nb = pl.col("_nbv")
    bpr = pl.col("_bpr")
    # what binds concurrency (LIMITS): the scheduler cap, else the larger share of a request's blocks
    per_req = (nb // bpr).clip(0)
    limit = (pl.when(nb.is_null() | pl.col("_pcode").is_not_null() | pl.col("_lcode").is_not_null()
                     | (per_req < 1)).then(None)          # invalid, unsupported, or not one request fits
             .when(per_req >= pl.col("max_num_seqs")).then(2)
             .when(2 * pl.col("_sbr") >= bpr).then(1)
             .otherwise(0)).cast(pl.UInt8)
    pre = (pl.when(pl.col("kv_cache_gib") <= 0).then(1)
           .when(nb < bpr).then(2)
           .when(pl.col("_outside_fail")).then(FIXED_KV_FAIL if fixed_kv else 3)
           .otherwise(None)).cast(pl.UInt16)
    max_conc = (nb.cast(pl.Float64) / bpr).clip(0)
    return [
        [blocks_per_request(pl.col("max_model_len"), pl.col("max_num_batched_tokens")).alias("_bpr"),
         state_blocks().alias("_sbr")],
        # a gather from the 3 names (a null code gives null): a quarter of replace_strict's cost
        [pl.lit(pl.Series(LIMITS, dtype=pl.String)).gather(limit).alias("concurrency_limited_by"),
         pl.coalesce(pl.col("_pcode"), pl.col("_lcode"), pre).alias("_pre"),
         max_conc.alias("max_concurrency"),
         (max_conc * pl.col("dp")).alias("max_concurrency_total"),
         # attention-free models (kvcache.ATTENTION_FREE_BLOCK): vLLM's block is max_model_len tokens
         pl.when((pl.col("token_block") == 0) & (pl.col("n_state") > 0)).then(pl.col("max_model_len"))
         .alias("_af_bs")],
        *attention_free_columns(conc_tokens),
    ]


def fallback_code() -> pl.Expr:
    """``_fb``, the code of a (layout, GPU, utilization) row when nothing else fails: its outside-budget margin
    under ``TIGHT_OUTSIDE_GIB`` (6, tight) or fits (0).  Per row, whatever the length (no per-length term changes
    ``_outside_margin``), so it is made on the row, not on each length row."""
    return pl.when(pl.col("_outside_margin") < TIGHT_OUTSIDE_GIB).then(6).otherwise(0).cast(pl.UInt16).alias("_fb")


def attention_free_columns(conc_tokens: bool = False) -> tuple[list[pl.Expr], list[pl.Expr]]:
    """Per length row: for attention-free models (``_af_bs`` set) ``block_size`` = max_model_len and "GPU KV
    cache size" = ``num_blocks x max_model_len`` (one group) as vLLM logs it (slots x context, kvcache.py);
    other rows keep their (layout, GPU, utilization) row's figures.  Done here, not per cell: the cells
    copy these columns from the length rows.

    ``conc_tokens`` (0.21+): every row logs ``int(max_concurrency x max_model_len)`` -- the attention-free
    figure is the same number (one block per request)."""
    af = pl.col("_af_bs")
    if conc_tokens:
        use = pl.col("_nbv").is_not_null() & (pl.col("_bpr") > 0)
        tokens = (pl.col("_nbv").cast(pl.Float64) / pl.col("_bpr") * pl.col("max_model_len")).floor()
        tokens = tokens.cast(pl.Int64).clip(0)
    else:
        use = af.is_not_null()
        tokens = (pl.col("_nbv") * af).clip(0)
    # the figure and where it applies once (``_tok``, ``_use``), then both columns from them
    tok, on = pl.col("_tok"), pl.col("_use")
    return [pl.coalesce(af, pl.col("block_size")).alias("block_size"), tokens.alias("_tok"), use.alias("_use")], [
            pl.when(on).then(tok).otherwise(pl.col("kv_cache_tokens")).alias("kv_cache_tokens"),
            pl.when(on).then(tok * pl.col("dp")).otherwise(pl.col("kv_cache_tokens_total"))
            .alias("kv_cache_tokens_total")]


# what the per-length pass needs from the (layout, GPU, util) rows for DeepSeek-V4 (``compressed_lens``)
COMPRESSED_IN = ("tok_conc", "ws_b", "ws_w", "ix_d", "a_moe_t", "cw0", "cw1", "cw2", "cw3", "_wsr", "activation_gib",
                 "kv_cache_tokens", "max_model_len_fit",
                 "n_slide2", "window2", "bs_slide2", "n_slide3", "window3", "bs_slide3")
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
    if fixed_kv:
        nb = pl.col("_nbv")
        ws_w = pl.lit(0.0)
    else:
        nbs = [pl.when(pl.col(f"bpb{i}") > 0)
               .then(((pl.col(f"av{i}") * GIB - _ws_rows(m, pl.col(f"wsr{i}"))) / pl.col(f"bpb{i}")).floor())
               .otherwise(None) for i in range(k)]
        nb = (pl.min_horizontal(nbs) if k > 1 else nbs[0]).fill_null(0).clip(0).cast(pl.Int64)
        ws_w = _ws_rows(m, pl.col("_wsr")) / GIB
    slot0 = []
    if stage0:
        ws0 = pl.when(on).then(_ws_rows(m, pl.col("wsr0")) / GIB).otherwise(0.0)
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


# what the per-length encoder terms read from the (layout, GPU, util) rows, and hand on (``encoder_lens``)
ENCODER_IN = ("a_enc_t", "a_add_t", "enc_item", "vid_f", "vid_p", "vid_s", "tow_t", "tow_in", "activation_gib", "n_groups",
              "max_model_len_fit", "dsa_ix", "a_moe_t")
ENCODER_OUT = ("_nbv", "kv_cache_gib", "activation_gib", "kv_cache_tokens", "kv_cache_tokens_total",
               "max_model_len_fit")


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
    on = (((f > 0) | (pl.col("tow_t").fill_null(0.0) > 0) | (pl.col("dsa_ix").fill_null(0) > 0))
          & pl.col("_nbv").is_not_null())
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

NO_ROW_CODE = 2**32 - 1      # ``_rpre`` of a length row without a row verdict (``_pre`` null)


def reason_ids(codes: list[tuple[str, str]], pre: np.ndarray, n_rows: int, per_len_rows: bool,
               need_len: np.ndarray, need_out: np.ndarray) -> np.ndarray:
    """The reason / status table index (``reason_table``) of per-length row verdict codes ``pre`` (one per
    length row, ``length * n_rows + u``; a code ``NO_ROW_CODE`` stays so): a static code is its own index;
    2 (one request does not fit) the row's ``_r_len`` -- per (length, row) with ``per_len_rows``, else per
    row --; 3 (out of memory outside the budget) and 6 (tight there) the row's ``_r_out``, in a segment of
    their own each (their statuses differ).  The segments hold only the rows ``need_len`` (code 2) /
    ``need_out`` (codes 3, 6) -- sorted, every row with the code among them -- in that order."""
    out = np.array(pre, dtype=np.uint32)
    first = len(codes)
    for code, base, need in ((2, first, need_len), (3, first + need_len.size, need_out),
                             (6, first + need_len.size + need_out.size, need_out)):
        at = np.flatnonzero(out == code)      # few rows: index them, not the whole array
        out[at] = base + np.searchsorted(need, at if code == 2 and per_len_rows else at % max(n_rows, 1))
    return out


def cell_pass() -> list[list[pl.Expr]]:
    """Per cell (x concurrency): KV needed, headroom, and the verdict as an index into the reason and
    status tables (``reason_table``: no string is built per cell).

    The verdict (see ``lens_pass``): the length row's own code ``_pre`` when set (``_rpre``, its table index,
    ``NO_ROW_CODE`` when not), then the target concurrency does not fit (4), KV headroom under 10 % (5), else
    the row's fallback ``_fb`` (``_rfb``: fits, or tight outside the budget).  Both indices are made
    per length row (``reason_ids``), so one integer chain per cell picks status and reason together."""
    nb = pl.col("_nbv")
    bpr = pl.col("_bpr")
    conc = pl.col("concurrency")
    kv_needed = (conc * bpr).cast(pl.Float64) * pl.col("_bpb") / GIB
    headroom = (pl.col("kv_cache_gib") - kv_needed) / pl.col("_budget") * 100
    rid = (pl.when(pl.col("_rpre") != NO_ROW_CODE).then(pl.col("_rpre"))
           .when(nb < conc * bpr).then(pl.lit(4, pl.UInt32))
           .when(pl.col("headroom_pct") < TIGHT_PCT).then(pl.lit(5, pl.UInt32))
           .otherwise(pl.col("_rfb")))
    return [[kv_needed.alias("kv_needed_gib"), headroom.alias("headroom_pct")], [rid.alias("_rid")]]


def reason_table(codes: list[tuple[str, str]], rows: pl.DataFrame, need_len: pl.Series,
                 need_out: pl.Series, len_rows: pl.DataFrame | None = None) -> tuple[pl.Series, pl.Series]:
    """The (status, reason) strings ``cell_pass``'s index picks: every code's static pair, then the rows'
    ``_r_len`` (code 2: no_fit) and ``_r_out`` twice (code 3: no_fit, then code 6: tight) -- codes 2 and
    3 / 6 carry their row's numbers --, formatted only for the rows ``need_len`` / ``need_out`` (the rows
    some cell has that code for), one entry each in that order (``reason_ids``): a few thousand strings,
    not a null-padded entry per row (that table was ~1.4 M entries on the benchmark, and ~0.07 s to build)."""
    static = pl.Series([r for _, r in codes], dtype=pl.String)
    r_len, r_out = row_reasons()
    parts = [static]
    for need, expr, frame in ((need_len, r_len, rows if len_rows is None else len_rows), (need_out, r_out, rows)):
        sub = frame.select(list(dict.fromkeys(expr.meta.root_names())))[need]
        parts.append(sub.select(expr).to_series().cast(pl.String))
    parts.append(parts[-1])
    n_len, n_out = parts[1].len(), parts[2].len()
    statuses = pl.concat([pl.Series([s for s, _ in codes], dtype=pl.String),
                          pl.repeat(VERDICTS[2][0], n_len, dtype=pl.String, eager=True),
                          pl.repeat(VERDICTS[3][0], n_out, dtype=pl.String, eager=True),
                          pl.repeat(VERDICTS[6][0], n_out, dtype=pl.String, eager=True)]).rechunk()
    return statuses.rename("status"), pl.concat(parts).rechunk().rename("reason")
