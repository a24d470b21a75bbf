"""The three measured terms of vLLM's budget: activation peak, non-torch memory, CUDA graphs.

Why a model and not constants: vLLM measures these at start-up, and they move
with the scheduler limits and the model, not with ``max_model_len``.  The forms
below follow what the profile run allocates (``gpu_model_runner.profile_run``:
a dummy forward of ``max_num_batched_tokens`` tokens, then -- on the last PP
stage only -- a dummy sampler run over ``max_num_seqs`` rows of full-vocab
logits); their constants are fitted by ``scripts/calibrate_overheads.py`` on the
v0.19 H100 start-up logs in ``tests/data/vllm_logs.csv`` (that script re-fits,
prints the residuals and checks these numbers).  GiB = 2**30 bytes.

Activation peak on a stage (bytes)::

    F      = T * a * (ALPHA_MLP * mlp_cols + BETA_HIDDEN * h)        dense forward peak
    H      = HIDDEN_KEPT * T * h * a                                  hidden states alive in the sampler
    S      = min(max_num_seqs, T) * V * (a + SAMPLER_BYTES)           logits (model dtype) + fp32
                                                                      softmax / sort / index buffers
    MOE    = T * topk * MOE_WS * (3 * I_e / moe_tp + h) * a           fused-MoE workspaces (kept cached)
    MM     = MM_ENCODER * max(T, item) * h * a                        multimodal encoder-cache profile (encoder.py)
    PP     = PP_BUFFERS * T * h * a   (pp > 1)                        IntermediateTensors (hidden + residual)
    A_last = max(F, H + S) + MOE + MM + PP ;  A_other = F + MOE + MM + PP

with ``T = max_num_batched_tokens``, ``a`` = activation dtype bytes, ``h`` the
hidden size, ``mlp_cols`` the dense MLP's column-parallel width per rank
(gate + up = 2 x intermediate / tp), ``V`` the vocabulary.  The logits are
all-gathered, so ``S`` does not shrink with TP (measured: Llama-3.1-8B 1.89 GiB
at TP 1, 2 and 4).

Non-torch memory (NCCL and custom all-reduce buffers, cuBLAS workspaces)::

    tp == 1, pp == 1 : NT_SINGLE        tp == 1, pp > 1 : NT_PP_ONLY
    comm group > 1   : NT_COMM_BASE + NT_COMM_PER_RANK * group     (group = tp, or tp * dp for MoE)

CUDA graphs (PIECEWISE + FULL captures: a per-layer part, a per-layer part that
scales with the activation width h / tp, and extra buffers for MoE kernels)::

    G = G_BASE + layers_on_stage * (G_PER_LAYER + G_PER_LAYER_WIDTH * h / 4096 / tp) + G_MOE * is_moe

Memory outside the budget (vLLM's start-up order, ``gpu_worker``: snapshot -> profile run ->
KV cache = budget - weights - activation - non-torch -> graph capture -> sampler warm-up; what
comes after the KV cache must fit in ``(1 - util) x total`` plus the activation peak the profile
run gave back)::

    CTX + max(0, G_unreserved + (SAMPLER_WARMUP + a / 4) * S_rows * V * 4 - A_last)

``CTX`` = CONTEXT_GIB on one GPU, CONTEXT_COMM_GIB with a communication group (both logged in the
start-up snapshot); ``G_unreserved`` the captured graph memory the version did not take from the
budget; ``A_last`` the last stage's forward / sampler peak (the kept fused-MoE workspaces, PP
buffers and encoder profile are not given back).  ``SAMPLER_WARMUP`` = 3 live fp32 buffers (vLLM's
sampler code) + ``SAMPLER_STRANDED`` = 2.0 buffers the allocator leaves reserved but unusable: the
two failed gpt-oss-20b starts (rows G01/G02) measure 2.3 and 2.1; 2.0 is the largest value that
keeps every logged successful start at a margin >= 0 (bound: row 87, Llama-3.3-70B fp8 at TP 2 and
util 0.95, +0.04 GiB) -- a bound from 3 rows, not a fit.  Margins on the logged H100 starts at util
0.95: G02 (gpt-oss-20b TP 2, failed) -0.73 GiB -> no_fit; G01 (TP 1, failed by 0.23 GiB) +0.22 GiB
-> tight (the one miss); gemma-2-9b / gemma-3-12b (rows 92/93, started) +0.66 / +0.51; TP 2 / TP 4
Llama and Qwen rows +0.04 .. +0.9.  The verdict's tight band (``exprs.TIGHT_OUTSIDE_GIB``) is 0.5 GiB.
"""

from __future__ import annotations

GIB = float(1 << 30)

# ---- activation (fitted by scripts/calibrate_overheads.py) ----
ALPHA_MLP = 1.591          # x mlp_cols elements per token: gate_up output + activation output
BETA_HIDDEN = 4.088        # x h elements per token: residual, norms, attention in/out
HIDDEN_KEPT = 1.974        # hidden states + residual of the dummy batch alive in the sampler run
SAMPLER_BYTES = 12.302    # fp32 bytes per logit beyond the model-dtype logits
# Model Runner V2 (dense models 0.25-0.28, every model 0.29+: profiles.runs_mrv2) samples the profile
# run with its own sampler: ``_dummy_sampler_run`` -> ``Sampler.sample`` (vllm/v1/worker/gpu/sample/
# sampler.py @0120ce5a) copies the model-dtype logits to one new fp32 tensor, applies temperature /
# penalties in place, skips top-k/top-p for the dummy batch (woosuk's NOTE in model_runner.py, source-index
# file 66437271747 -- the MRV2 runner whose profile_cudagraph_memory returns 0) and samples with
# ``gumbel_sample`` (gumbel.py @03f97cce: per-1024-column block maxima, int64 + fp32 of r x V/1024).  So 4
# bytes per logit beyond the model-dtype logits, not the MRV1 sampler's fitted 12.3 (probs, q, ...).  The
# TP all-gather of the logits (shard + gathered + reshaped, 2 + 2 + 2/tp bytes) is freed before the copy.
# Checked: row 35 (Qwen2.5-0.5B, 0.27.1, 256 x 151936 logits) logs 0.25 GiB of peak activation, this
# form 0.22 (MRV1 form 0.52); N05 (T = 8192) 0.31 vs 0.29 (forward-bound; 0.55).
MRV2_SAMPLER_BYTES = 4.0
# vLLM 0.33.0+: MRV2's ``_dummy_sampler_run`` samples the dummy batch twice -- the default pass, then a
# "warmup-param pass" with ``SamplingParams.for_sampler_warmup()`` on every row ("warmup_kernels (run after the
# KV cache is sized) pays for the fp32 logits pipeline, so the profiled peak must too", vllm 0.33.0 sdist
# v1/worker/gpu/model_runner.py ``_dummy_sampler_run``; 0.34.0 :1039-1062; absent from 0.32.0).  Those params set
# temperature 0.9, top_k 50 and top_p 0.9, so the pass copies the logits to fp32 (sampler.py ``apply_sampling_params``,
# 4 B) and, on CUDA with the FlashInfer sampler (``flashinfer_sampler_supported``, default on since 0.21; top_k
# arrives as a per-row GPU tensor, so FlashInfer's scalar-k fast path does not apply), samples with
# ``flashinfer.sampling.top_k_top_p_sampling_from_logits(processed, k, p)`` (v1/sample/ops/topk_topp_sampler.py
# ``flashinfer_sample``), whose "top_k_first" path holds ``masked_logits = top_k_mask_logits(logits, top_k)`` and
# ``probs = torch.softmax(masked_logits)`` -- two more fp32 copies -- while it samples: 12 B a logit beyond the
# model-dtype logits.  With ``VLLM_USE_FLASHINFER_SAMPLER=0`` the Triton top-k/top-p masks the fp32 copy in place
# (topk_topp_triton.py ``apply_top_k_top_p_triton``: a per-program buffer, not per row): 4 B as before.
MRV2_SAMPLER_WARMUP_PASS_FROM = (0, 33, 0)
MRV2_SAMPLER_BYTES_FLASHINFER_PASS = 12.0
# vLLM 0.28.0-0.32.x: ``apply_sampling_params`` returns the logits untouched when no row of the batch needs logits
# processing (``if not np.any(self.needs_logits_processing[idx_mapping_np]): return logits``: vllm 0.28.0 sdist
# v1/worker/gpu/sample/sampler.py:192, 0.29.0 :218, 0.32.0 :238; absent from 0.27.1, which copies unconditionally,
# :158-159), and the profile run's dummy batch has no request (``needs_logits_processing`` all False, :56), so the
# default-params pass -- the only one before 0.33 -- holds no fp32 copy: 0 B beyond the logits (gumbel's per-block
# maxima, r x V / 1024, aside).  Row 185 (0.30.0) logs 0.53 GiB of peak activation with its 0.38 GiB graph estimate
# inside it: 0.15 for the profile run, against 0.16 modelled so (0.24 with the 4 B copy).
MRV2_SAMPLER_NO_COPY_FROM = (0, 28, 0)


def mrv2_sampler_bytes(version, flashinfer_sampler: bool | None = None) -> float:
    """Bytes a logit beyond the model-dtype logits that Model Runner V2's profile-run sampler holds at its peak, for
    the release ``version`` ((major, minor[, patch]); None: the newest) and ``VLLM_USE_FLASHINFER_SAMPLER`` as the
    deployment sets it (None: vLLM's default, on): 12 from 0.33.0 with the FlashInfer sampler (4 without it), 0 in
    0.28.0-0.32.x (no fp32 copy), 4 before 0.28 (the copy every pass made)."""
    v = tuple(version) + (0,) * (3 - len(tuple(version))) if version is not None else None
    if v is None or v >= MRV2_SAMPLER_WARMUP_PASS_FROM:
        return MRV2_SAMPLER_BYTES_FLASHINFER_PASS if flashinfer_sampler is not False else MRV2_SAMPLER_BYTES
    if v >= MRV2_SAMPLER_NO_COPY_FROM:
        return 0.0
    return MRV2_SAMPLER_BYTES


MOE_WS = 0.768             # fused-MoE intermediate caches, in units of T*topk*(3*I_e/moe_tp + h)
from .encoder import MM_ENCODER  # noqa: E402,F401  multimodal encoder profile: its own module and fit
PP_BUFFERS = 2.0         # pp > 1: hidden + residual IntermediateTensors of T tokens (not fitted: 2 tensors)

# ---- Gated DeltaNet prefill buffers (hybrids; the 0.10 profile only) ----
# Fitted as state-sized buffers per dummy request of the profile run (min(max_num_seqs, T) requests x
# one layer's state bytes on the rank x copies) on ONE start-up (vllm_logs.csv row 71, Qwen3-Next-80B
# TP2, v0.10.2: 5.58 GiB logged, 2.46 modelled without it).  vLLM's code holds no such buffer: without
# attention metadata the GDN core returns before any kernel in the profile run ("# V1 profile run" in
# ``_forward`` of the 0.10-era qwen3_next.py, as its vLLM-derived copies in the search index show; at
# 0.26+ ``QwenGatedDeltaNetAttention._forward_core`` / ``_warmup_prefill_kernels``,
# vllm/model_executor/layers/mamba/gdn/qwen_gdn_linear_attn.py @00545a8a: one T = 64 warm-up of
# ``chunk_gated_delta_rule``, freed with ``empty_cache``).  So the term is an unattributed 0.10.2
# figure, kept only by the 0.10 profile (profiles.VllmProfile.gdn_state_copies; 0 from 0.11, branch
# gdnact): at 0.28 it put 7.5 of row 174's 8.68 GiB of activation (256 dummy requests x 9.76 x 3.2 MB),
# where the log leaves <= 3.2 GiB for activation, non-torch and graphs together.  The seed API (no
# version) keeps it: a real prefill batch does gather states per request.  Not applied to Mamba / KDA /
# short-conv state kinds: vLLM V1's profile run skips the Mamba scan, so a Mamba layer holds its
# projection width only, priced code-derived by hybrid.mixer_excess_cols (docs/accuracy.md, "Mamba
# families: the mixer width").
GDN_STATE_COPIES = 9.76

# ---- Gated DeltaNet chunk-scan transient in the 0.26+ CUDA-graph estimate (issue #50780) ----
# vLLM 0.26+ builds attention metadata for the throw-away capture of ``profile_cudagraph_memory``, so a
# GDN layer runs its real FLA chunked prefill there (the profile run does not: with no metadata
# ``QwenGatedDeltaNetAttention._forward_core`` only warms the kernels at T = 64,
# vllm/model_executor/layers/mamba/gdn/qwen_gdn_linear_attn.py @00545a8a).  The free-memory delta it
# logs as "Estimated CUDA graph memory" then holds that prefill's live set.  vLLM's own accounting of
# the set (vllm/model_executor/layers/mamba/gdn/chunk_workspace.py @569ff4c6, issue #54775), per
# batched token and per *local* value head (``linear_num_value_heads / tp``; TP shards the heads):
#     h      dv * dk * a / BT    (one state per chunk of BT = 64 tokens)
#     v_new, u, o   3 * dv * a     w   dk * a
#     A      BT * 4 (fp32)       + its bf16 copy in solve_tril  BT * 2
# = 1920 bytes for dk = dv = 128 in bf16.  The estimate is the pool growth, so the transient and the
# real graphs share it: estimate = max(graph estimate, GDN_TRANSIENT_SCALE x live set x T).
# GDN_TRANSIENT_SCALE (allocator rounding / kernel scratch over the analytic set; chunk_workspace.py:
# "analytic peak is ~90 % of the true CUDA peak", i.e. 1.11) is fitted on ONE sweep, vLLM issue
# #52872 (64-layer Qwen3.5/3.6-27B-geometry hybrid, 48 value heads, one RTX 5090): graph figure 0.89 GiB
# at T = 8192, flat 0.52 GiB at T = 2048 / 3072 / 4096 (the transient, 0.22-0.45 GiB there, hides
# under the graphs).  0.89 / (8192 x 48 x 1920 B) = 1.27.  Checks: row M10 (Qwen3.5-35B-A3B TP4,
# 8 local heads, T = 40,000: transient 0.73 GiB < its 1.32 GiB estimate, which matches its captured
# 1.34: no transient visible, as logged); #50780's ~128 KiB per token, read as one 48-head rank
# (117 KiB here).
GDN_CHUNK = 64
GDN_TRANSIENT_SCALE = 1.27


def gdn_transient_bytes_per_token(state, tp: int, act_b: float) -> float:
    """Bytes per batched token of one rank's FLA chunk-scan live set (chunk_workspace.py's terms;
    ``state`` = arch.state.StateGeometry of kind ``gdn``, or ``kda`` read as heads x head_dim both
    ways -- no KDA log checks it).  0 for any other kind."""
    if state is None:
        return 0.0
    if state.kind == "gdn":
        _, nv, dk, dv, _ = state.dims
        heads = nv // tp
    elif state.kind == "kda":
        nh, dv, _, _, _ = state.dims
        heads, dk = nh // tp, dv
    else:
        return 0.0
    per_head = act_b * (3 * dv + dk) + GDN_CHUNK * (4 + 2) + dv * dk * act_b / GDN_CHUNK
    return heads * per_head


def mamba_profile_cols(state, tp: int) -> float:
    """Elements per batched token a Mamba mixer holds at once in vLLM's profile run, on one rank.

    The profile run gives the mixers no attention metadata and they skip the conv and scan kernels
    (docs/accuracy.md "Mamba families: the mixer width"); what is left is the projection width:
    Mamba-2 ``in_proj`` output ``(2I + 2G'N + H)/tp`` + ``ssm_output`` ``I/tp`` + the contiguous x|B|C
    clone ``(I + 2G'N)/tp`` = ``(4I + 4G'N + H)/tp`` (``G'`` padded to tp when ``n_groups % tp``);
    Mamba-1 ``in_proj`` output ``2I/tp`` + the contiguous x half ``I/tp`` = ``3I/tp``.  0 for other kinds.
    Priced (factor 1, code-derived, no row fits it) where it is wider than the priced MLP width -- every
    attention-free model, and hybrids whose MLP is narrower (``hybrid.mixer_excess_cols``,
    ``tables.activation_coeffs``)."""
    if state is None:
        return 0.0
    if state.kind == "mamba2":
        inter, groups, heads, _, n, _ = state.dims
        padded = groups if groups % tp == 0 else tp
        return (4 * inter + 4 * padded * n + heads) / tp
    if state.kind == "mamba1":
        return 3 * state.dims[0] / tp
    return 0.0


# ---- non-torch ----
NT_SINGLE = 0.25
NT_PP_ONLY = 0.07
NT_COMM_BASE = 1.991
NT_COMM_PER_RANK = 0.041
# The TP (TP x DP for MoE) group term above was fitted on H100 SXM rows: NVSwitch with NVLink SHARP.
# What the profile run adds there is NCCL's (communicators connect lazily, on the first collectives
# of the profile run); vLLM's custom all-reduce allocates nothing in it (below).  The base,
# NT_COMM_BASE - NT_SINGLE = 1.74 GiB, is read as NCCL's NVLS buffers (an inference from the rows;
# NCCL's source was not read): every logged TP group without NVLS is at the one-GPU level -- A100 SXM
# (NVSwitch gen2, row 55: 0.43 at TP 4), L40S (row 23: 0.30 at TP 2), PCIe 22 GB cards (rows 57-59:
# 0.20 at TP 4), M10 (unnamed 80 GB card: 0.13 at TP 4) -- while NVLS machines print 2.06-2.21 (H100,
# 0.19), 1.38 (H200, 0.10.2), 0.95 (B200-class, 0.26, row 34).
# So without NVLS (catalog interconnect other than nvswitch_nvls / xgmi / other / not given) a group
# costs the profile's one-GPU figure plus the per-rank term: nt_single + nt_comm_per_rank x group
# (profiles.non_torch_gib).  Row N08 (RTX PRO 6000 PCIe, TP 2) is the one 0.17+ start it decides.

# ---- vLLM's custom all-reduce (outside the budget) ----
# ``CustomAllreduce.__init__`` (vllm/distributed/device_communicators/custom_all_reduce.py, read at
# the source index's current version; cuda_communicator.py @00b5a01d builds it only for the TP group
# when ``_ENABLE_CUSTOM_ALL_REDUCE``, i.e. without --disable-custom-all-reduce) allocates, per rank:
# the IPC-shared meta buffer (``ops.meta_size() + max_size``), the IPC-shared eager buffer
# (``max_size``) -- ``max_size`` 8 MiB by default, capped lower with symmetric memory on SM 9.0 / 10.0
# at TP >= 6 (all_reduce_utils.CUSTOM_ALL_REDUCE_MAX_SIZES) -- and an 8 MiB ``rank_data`` tensor for
# the registered graph addresses (``register_graph_buffers`` adds IPC handles to existing blocks, no
# memory).  All of it is allocated in ``init_worker_distributed_environment``, before the start-up
# snapshot (gpu_worker.py @35d5cda1), so it sits in CONTEXT_COMM_GIB, never in the budget.
# It is built only for TP sizes 2, 4, 6, 8 on one node, and for TP > 2 only when every pair of GPUs
# is NVLink-connected ("Custom allreduce is disabled because it's not supported on more than two
# PCIe-only GPUs"); a failed P2P test also disables it (not modelled: GeForce cards usually lack P2P).
CUSTOM_AR_SIZES = (2, 4, 6, 8)
# vLLM 0.34+'s extensible KV cache keeps max(floor, 0.75 x the transient peak) of the device free beyond the
# transient itself (vllm 0.34.0 sdist v1/worker/extensible_kv_cache.py:64 KV_CACHE_MARGIN_FLOOR_BYTES =
# (3 if current_platform.is_rocm() else 1) << 30 -- "ROCr also maps kernel scratch outside the allocator when a
# kernel first needs it, so ROCm keeps a larger floor" (:61-63) --, :65 KV_CACHE_MARGIN_FRACTION = 0.75; applied in
# measure_kv_cache_bytes :613-617)
EXTENSIBLE_MARGIN_FLOOR_GIB = 1.0
EXTENSIBLE_MARGIN_FLOOR_ROCM_GIB = 3.0
EXTENSIBLE_MARGIN_FRACTION = 0.75


def extensible_margin_floor_gib(vendor: str | None) -> float:
    """The extensible KV cache's margin floor on a GPU of this catalog ``vendor``: 3 GiB where vLLM runs on ROCm
    (AMD GPUs: ``current_platform.is_rocm()``), 1 GiB elsewhere (CUDA; a GPU without a vendor counts as CUDA)."""
    return EXTENSIBLE_MARGIN_FLOOR_ROCM_GIB if (vendor or "").strip().lower() == "amd" else EXTENSIBLE_MARGIN_FLOOR_GIB

# ---- Intel Gaudi (vllm-gaudi platform plugin) ----
# vllm-project/vllm-gaudi 091bbadd, vllm_gaudi/v1/worker/hpu_worker.py:399-441 (the same in every tag v0.10.0 -
# v0.27.0rc0; docs/decisions.md "Gaudi / TPU plugins"): after loading, KV = free HBM (mem_get_info) x
# gpu_memory_utilization x (1 - VLLM_GRAPH_RESERVED_MEM) - one block; VLLM_GRAPH_RESERVED_MEM defaults to '0.1' and
# is 0 with enforce_eager; the plugin's profile_run returns at once (hpu_model_runner.py:6339-6341): no activation,
# non-torch or graph estimate is measured.  Free HBM after loading = the device total less the weights (the docs'
# Gaudi 2 log: '15.05/94.62 used' after loading Llama-3.1-8B).
HPU_GRAPH_RESERVED = 0.1


def is_hpu(vendor: str | None, name: str | None = None) -> bool:
    """A catalog GPU vLLM runs through the vllm-gaudi plugin (an Intel Gaudi, by vendor and name: Intel's GPUs run
    the XPU platform instead): its budget is the plugin's (``HPU_GRAPH_RESERVED``, exprs.util_pass)."""
    return (vendor or "").strip().lower() == "intel" and "gaudi" in (name or "").lower()


CUSTOM_AR_GIB = 3 * 8 / 1024            # meta + buffer (2 x 8 MiB) + rank_data (8 MiB)
# catalog interconnect -> (fitted NVLS group term applies, largest group whose GPUs are all NVLink-linked)
_ALL = 1 << 20
INTERCONNECT_RULES = {"nvswitch_nvls": (True, _ALL), "nvswitch": (False, _ALL), "nvlink_mesh": (False, 4),
                      "nvlink_bridge": (False, 2), "pcie": (False, 1),
                      # not NVIDIA: neither rule was read for RCCL / other stacks -- the fitted terms stay
                      "xgmi": (True, _ALL), "other": (True, _ALL), "": (True, _ALL)}


def comm_terms(interconnect: str | None) -> tuple[bool, int]:
    """(the NVLS-fitted TP-group non-torch term applies, size up to which vLLM sees the GPUs fully
    NVLink-connected) for a catalog ``interconnect`` value; not given = the fitted NVSwitch machine."""
    return INTERCONNECT_RULES[(interconnect or "").strip().lower()]

# ---- CUDA graphs ----
G_BASE = 0.333
G_PER_LAYER = 0.0118
G_PER_LAYER_WIDTH = 0.0054
G_MOE = 0.560
# Model Runner V2 (dense models from 0.25, every model from 0.29: profiles.runs_mrv2) captures its FULL and
# PIECEWISE graphs into one shared pool, PIECEWISE first so the FULL graphs' activations fit in memory it already
# holds (vllm 0.29.0 sdist, v1/worker/gpu/cudagraph_utils.py:332-335, :796-798) -- far less than the Model Runner
# V1 captures G was fitted on (v0.19 H100 rows).  The graph memory MRV2 starts log ("Graph capturing finished ...
# took" / "... GiB for CUDAGraph memory") over G at the same capture sizes: row 33 (0.31.0, A100, Llama-3.1-8B)
# 0.23 / 0.80, 184 (0.29.0, RTX 5060 Ti, Qwen3-4B geometry) 0.23 / 0.79, 185 (0.30.0, same card and checkpoint)
# 0.29 / 0.79, 35 (0.27.1, RTX 4090, Qwen2.5-0.5B) 0.37 / 0.60, N04 (0.26.0, 16 GB card, Qwen2.5-0.5B) 0.40 /
# 0.60: ratios 0.29, 0.29, 0.37, 0.62, 0.67, median 0.37 (row 189 is row 33's log; N05 logs 0.00 under WSL2 and
# N06 is a cold-compile start, listed not scored; scripts/calibrate_overheads.py --profiles re-fits it).  A
# ratio, not a constant: the five rows span 24-36 layers and do not show how MRV2's figure grows with depth, so
# the MRV1 form keeps that growth.  The graph estimate 0.29+ takes from the budget is a multiple of this
# captured figure (profiles.graph_estimate_scale).
MRV2_GRAPH_RATIO = 0.37

# ---- outside the budget ----
# Memory in use when vLLM takes its start-up snapshot (``gpu_worker.init_device``: after
# ``init_worker_distributed_environment``), so never inside ``util x total``.  Logged as
# "worker init memory snapshot ... non_torch_memory=": 0.51 GiB on one H100 (row G01), 1.51 at TP 2
# (RedHatAI Mistral-Small-24B w8a8) and 1.53 at TP 4 (Llama-3.3-70B fp8) in llm-d-planner's v0.19.0
# logs (NCCL communicators and custom all-reduce buffers); 2.01 at TP 2 for gpt-oss-20b (row G02,
# with the allreduce-rms fusion workspace) -- the lower figure is used.
CONTEXT_GIB = 0.5
CONTEXT_COMM_GIB = 1.52
# Sampler warm-up after the KV cache and the graphs (``compile_or_warm_up_model`` ->
# ``_dummy_sampler_run`` over min(max_num_seqs, T) rows; vLLM 0.19 ``sampler.py`` /
# ``topk_topp_sampler.forward_native``): the model-dtype logits (a / 4 fp32 buffers, added in
# tables.activation_coeffs), fp32 logits, ``probs = softmax`` and ``q = empty_like(probs)``: 3 fp32
# buffers live, plus what the top-k/top-p step leaves reserved but unusable by the allocator:
# 1.78 GiB (G01) and 1.62 GiB (G02) "reserved by PyTorch but unallocated" = 2.3 / 2.1 buffers of
# 1024 x 201088 fp32 logits.  The activation peak of the profile run is given back before this
# (exprs.gpu_pass credits it).
SAMPLER_LIVE = 3.0
SAMPLER_STRANDED = 2.0
SAMPLER_WARMUP = SAMPLER_LIVE + SAMPLER_STRANDED   # Model Runner V1; MRV2's warm-up: MRV2_SAMPLER_BYTES (tables.py)

# ---- vLLM version profiles: reportgen/estimate/profiles.py ----


# vLLM takes the CUDA-graph estimate on CUDA only before 0.26: ``not current_platform.is_rocm()`` (vllm 0.18.0 sdist
# v1/worker/gpu_worker.py:398, 0.19.1 :380, 0.20.0 :380-385: "Skip on ROCm/HIP/XPU as graph pool handles and
# mem_get_info behave differently"), ``current_platform.is_cuda()`` (0.21.0 :402-407 .. 0.25.1), ``is_cuda_alike()``
# (ROCm included) from 0.26.0 -- so an AMD GPU keeps its graph memory outside the budget through 0.25
# (branch platformaudit's finding; the catalog's vendor says which GPUs run ROCm)
GRAPH_ESTIMATE_ON_ROCM_FROM = (0, 26, 0)


def graph_estimate_on_platform(vendor: str | None, version) -> bool:
    """Whether vLLM can take its CUDA-graph estimate from the budget on this vendor's GPUs at ``version`` ((major,
    minor, patch); None: the newest): always on NVIDIA, on AMD (ROCm) from 0.26."""
    if (vendor or "").strip().lower() != "amd":
        return True
    return version is None or tuple(version) >= GRAPH_ESTIMATE_ON_ROCM_FROM


def graphs_in_budget(version: str) -> bool:
    """True when the version's profile takes a CUDA-graph estimate from the KV budget (>= 0.20)."""
    from .profiles import profile_for
    return profile_for(version)[0].graphs_in_budget


# vLLM 0.28+ gives GPUs of >= 160 GiB (B200 / B300 / MI300X class) the largest API-server defaults: vllm 0.28.0 sdist,
# engine/arg_utils.py:2582-2590 (``device_memory >= 160 * GiB_bytes`` -> 16384 batched tokens, 1024 sequences, for
# the API server and the LLM class); the 0.27.1 sdist has no such branch (>= 70 GiB and not A100: 8192 / 1024)
HUGE_GPU_DEFAULTS_FROM = (0, 28)
HUGE_GPU_GIB = 160


def default_scheduler_limits(usable_memory_gib: float, large: bool | None = None,
                             version: tuple[int, int] | None = None) -> tuple[int, int]:
    """vLLM's API-server defaults (engine/arg_utils.py ``_set_default_max_num_seqs_and_batched_tokens_args``):
    ``(max_num_batched_tokens, max_num_seqs)``.

    >= 70 GiB GPUs: 8192 / 1024; smaller: 2048 / 256 (every A100 is small: ``large`` = the catalog's ``large_gpu``,
    None = ``usable_memory_gib >= 70``); from vLLM 0.28 (``version`` (major, minor); None = newest) >= 160 GiB:
    16384 / 1024 (``HUGE_GPU_DEFAULTS_FROM``).  GB10 is small from 0.33 (its ``is_gb10`` check, vllm 0.33.0 sdist
    engine/arg_utils.py); the catalog holds no GB10.
    """
    big = usable_memory_gib >= 70 if large is None else large
    if usable_memory_gib >= HUGE_GPU_GIB and (version is None or tuple(version[:2]) >= HUGE_GPU_DEFAULTS_FROM):
        return 16384, 1024
    return (8192, 1024) if big else (2048, 256)
