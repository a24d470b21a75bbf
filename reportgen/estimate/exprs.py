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

The passes stay here; split out by concern (and re-exported here): ``request_blocks`` (blocks per request and
the largest length that fits), ``verdicts`` (verdict codes, reason strings and tables, the tight bands),
``compressed_lens`` (DeepSeek-V4's per-length terms, the DSA indexer gather) and ``encoder_lens`` (the
multimodal encoder profile's per-length terms).
"""

from __future__ import annotations

import polars as pl

from . import encoder as enc
from . import overheads as oh
from .tables import GIB

# Split out by concern (docs/decisions.md); imported here for the passes and re-exported so that
# ``from reportgen.estimate.exprs import X`` and ``exprs.X`` keep working.
from .compressed_lens import (COMPRESSED_IN, COMPRESSED_OUT, FIT_STEPS, _round_up, _ws_rows,  # noqa: F401
                              compressed_lens, dsa_indexer_gib, legacy_concurrency_blocks)
from .encoder_lens import ENCODER_IN, ENCODER_OUT, encoder_lens, encoder_lens_off  # noqa: F401
from .request_blocks import (BIG, FIT_TERMS, _cdiv, blocks_per_request, extra_slides, fit_terms,  # noqa: F401
                             max_len_fit, state_blocks)
from .verdicts import (DYNAMIC_REASONS, ENCODER_FAIL, FIXED_KV_FAIL, LIMITS, NO_OUTSIDE_MARGIN,  # noqa: F401
                       NO_ROW_CODE, TIGHT_OUTSIDE_GIB, TIGHT_PCT, VERDICTS, length_codes, length_reason, reason_ids,
                       reason_table, row_reasons, verdict_codes)


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
    from the budget; times the GPU's ``g_est_ok``, 0 where its platform takes no estimate), ``gdn_t`` (bytes per
    batched token of the GDN chunk-scan transient the 0.26+ graph estimate holds: the estimate is ``max(g_bf x
    graphs, T x gdn_t)``), ``g_n`` / ``g_on`` (capture-size scaling, per GPU row: it follows max_num_seqs).

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
    # the share of the captured graphs the estimate takes from the budget, 0 where the GPU's platform takes none
    # (``g_est_ok``: ROCm before 0.26, overheads.graph_estimate_on_platform)
    g_bf = pl.col("g_bf") * pl.col("g_est_ok")
    g_est = t * pl.col("gdn_t") * pl.col("g_est_ok") / GIB   # GDN chunk-scan transient in the 0.26+ estimate (#50780)
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
         (ctx + ((gcap_max * (1 - g_bf)).clip(0) + r * pl.col("warm_r") / GIB - core_last).clip(0)))
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
        est = pl.max_horizontal(g_bf * gc, g_est)
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


def util_pass(k: int, kv_fixed_gib: float | None = None, gathered: bool = False, extensible: bool = False,
              hpu_utilization: float | None = None) -> list[list[pl.Expr]]:
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

    Intel Gaudi GPUs (the GPU table's ``hpu``) take the vllm-gaudi plugin's budget instead (overheads.HPU_GRAPH_RESERVED):
    ``(total - weights) x util x (1 - 0.1) - one block`` (the graph reserve 0 with --enforce-eager: ``g_on``), no
    activation, non-torch or graph estimate, no extensible cache (vLLM 0.34 turns it off off CUDA / ROCm: "it is only
    supported on CUDA and ROCm", config/vllm.py:3200-3201), nothing checked after the sizing.  ``hpu_utilization``: the
    utilization such a GPU runs at where the job's is the extensible cache's default 1.0 (the default without it:
    config/cache.py:494-500, job.utilization_without_extensible_cache); the first batch writes it into the row's
    ``gpu_memory_utilization``.
    """
    hpu = pl.col("hpu") > 0
    util = pl.col("gpu_memory_utilization")
    if hpu_utilization is not None:
        util = pl.when(hpu).then(pl.lit(float(hpu_utilization))).otherwise(util)
    budget = util * pl.col("gpu_memory_gib")
    if kv_fixed_gib is not None:       # the engine's own footprint stands in for util x total
        budget = pl.max_horizontal([pl.col(f"fix{i}") for i in range(k)]) + float(kv_fixed_gib)
    first = [budget.alias("_budget")] + ([util.alias("gpu_memory_utilization")] if hpu_utilization is not None else [])
    # the plugin keeps VLLM_GRAPH_RESERVED_MEM of the usable memory for HPU graphs (none with --enforce-eager)
    hpu_usable = 1 - oh.HPU_GRAPH_RESERVED * pl.col("g_on")
    for i in range(k):
        avail = budget - pl.col(f"fix{i}") if kv_fixed_gib is None else pl.lit(float(kv_fixed_gib))
        if extensible and kv_fixed_gib is None:
            margin = pl.max_horizontal(pl.col("ext_floor"), oh.EXTENSIBLE_MARGIN_FRACTION * pl.col(f"tr{i}"))
            avail = pl.min_horizontal(avail, pl.col("gpu_memory_gib") - pl.col("_ctx") - pl.col(f"fix{i}") - margin)
        if kv_fixed_gib is None:
            avail = pl.when(hpu).then((pl.col("gpu_memory_gib") - pl.col(f"w{i}")) * util * hpu_usable
                                      - pl.col(f"bpb{i}").fill_null(0.0) / GIB).otherwise(avail)
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
    if kv_fixed_gib is None:      # Gaudi: the plugin's budget, no after-profiling check modelled
        outside_margin = pl.when(hpu).then(pl.lit(NO_OUTSIDE_MARGIN)).otherwise(outside_margin)
    plugin = hpu if kv_fixed_gib is None else pl.lit(False)
    third = [
        pick("w").alias("weights_gib"),
        pl.when(plugin).then(0.0).otherwise(pick("act")).alias("activation_gib"),
        pl.when(plugin).then(0.0).otherwise(pl.col("nt")).alias("non_torch_gib"),
        # Gaudi: the HPU-graph reserve the plugin keeps out of the KV cache
        pl.when(plugin).then((pl.col("gpu_memory_gib") - pick("w")) * pl.col("gpu_memory_utilization")
                             * oh.HPU_GRAPH_RESERVED * pl.col("g_on"))
        .otherwise(pick("gc")).alias("cuda_graph_gib"),
        pick("av").alias("kv_cache_gib"),
        *([pl.when(hpu).then(pl.lit(NO_OUTSIDE_MARGIN)).otherwise(pick("am")).alias("_kvm")]
          if extensible and kv_fixed_gib is None else []),
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
