"""vLLM version profiles: what decides the KV budget, one row per range of releases.

Why a table: vLLM's KV budget is ``total x gpu_memory_utilization`` minus what the
profile run measures (weights, activation peak, non-torch memory) and -- from 0.20
-- minus a CUDA-graph *estimate*.  Which terms exist, how big they are and whether
the graph estimate is taken from the budget changed release by release.  The
overhead *forms* live in ``overheads.py`` (fitted on the v0.19 H100 logs); a
profile says how one range of releases departs from them.  Every field is data,
so ``scripts/calibrate_overheads.py --profiles`` re-fits the numeric ones on each
profile's own log rows and fails when they drift.

The history this table follows (vllm-project/vllm; file versions read with the
source index, PRs and issues by number):

- ``vllm/v1/worker/gpu_worker.py`` @ 0012cf691b7e69423244d2b1405f4b6832156e19 (early V1):
  budget = total x util - (torch peak + non-torch after profile_run); graphs are
  captured after the KV cache is sized (``compile_or_warm_up_model``) and sit
  outside the budget; the sampler warm-up over ``min(max_num_seqs,
  max_num_batched_tokens)`` rows runs after capture (also outside).
- ``vllm/v1/worker/gpu_worker.py`` @ 35d5cda123ec28581759b6d34cde8052314fb1e6 (late 2025):
  ``memory_profiling`` snapshot taken after the distributed init; ``requested_memory
  - non_kv_cache_memory``; no graph term; ``--kv-cache-memory`` skips profiling.
- PR #30515 (merged 2025-12): ``profile_cudagraph_memory`` -- a throw-away capture of
  every mode with a minimal KV cache, the 2nd sample extrapolated linearly to all
  capture sizes -- behind ``VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS``, *off* by
  default.  0.18/0.19 log the estimate but do not subtract it ("In v0.19 ... will be
  enabled by default", rows 85-142 of tests/data/vllm_logs.csv).  Release sdists (branch versionaudit): first
  in vllm 0.18.0 (envs.py:247 ``VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS: bool = False``, v1/worker/gpu_worker.py:399
  ``profile_cudagraph_memory()``); the 0.17.0 sdist has neither.
- v0.20.0: default flipped to *on*.  The log line says "CUDA graph memory profiling is enabled
  (default since v0.21.0)", but the official ``vllm/vllm-openai:v0.20.0`` image already prints it
  with the variable unset (source-index file 51912001300: the whole compose file and log, the
  0.43 GiB estimate taken from the budget) and so does a v0.20.2 start (file 56816929356), while
  v0.19.1 still says "In v0.19, CUDA graph memory profiling will be enabled by default ... To try
  it now, set VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=1" (file 62752965317): the profile starts
  at 0.20 (issue 10, branch logs10; it started at 0.21 before).  The sdists agree: vllm 0.19.1 sdist envs.py:1654-1656
  reads the variable with default "0", vllm 0.20.0 sdist envs.py:1724-1726 with default "1" (and envs.py:260
  ``bool = True``); "1" in every sdist to 0.34.0.  PR #45197 (2026-06) proposed turning it off
  again (the linear extrapolation over-estimates, MiniMax-M2.5 KV 3.1x smaller); it
  was closed unmerged -- 0.27.1 and 0.28 logs still say "enabled".
- v0.21: "GPU KV cache size" is logged as ``int(max_concurrency x max_model_len)`` (PR #38364; the
  ``tokens_from_concurrency`` field), not a block multiple: the budget is 0.20's, the token figure not.
  vllm 0.21.0 sdist, v1/core/kv_cache_utils.py:1708 (``num_tokens = int(max_concurrency * max_model_len)``); the
  0.20.0 sdist's ``_report_kv_cache_config`` (kv_cache_utils.py:1679) still prints ``num_blocks // n_groups x
  min block size``.
  The 0.20 line already printed it after 0.20.0 -- rows 166 (0.20.1rc1.dev91: 1,206,303 = int(4.7121 x
  256,000)) and 170 (0.20.2: 286,007 at 1.12 x 256,000) -- while 0.20.0 (row 167: 33,536 = 16 blocks of 2,096)
  still counted blocks.  The sdists put the change in the first patch: vllm 0.20.0 sdist
  v1/core/kv_cache_utils.py:1694-1697 (``num_blocks // len(kv_cache_groups) * min_block_size``), vllm 0.20.1 sdist
  kv_cache_utils.py:1706 (``int(max_concurrency * max_model_len)``; 0.20.2 the same lines), so the profile with that
  line starts at **0.20.1** (profile "0.20.1", 0.20.1-0.24; branch patchver -- the profiles split on major.minor
  before, and those rows were run as 0.21 through scripts/validate_vllm_logs.py ROW_SETTINGS).
- v0.25 (0.25.0 sdist; the logs first showed it at 0.25.1): Model Runner V2 became the default for *dense* models and its
  ``profile_cudagraph_memory`` returned 0 (issue #49224), so dense models reserved no
  graph memory; fixed by PR #53306 (merged 2026-08-21, forward-fixed by #53682 /
  #53955).  0.28.0 does not have it yet (row 68), 0.31.0 does (row 33): the profile
  boundary is put at 0.29.  PR #53183 (merged days later, "Use MRV2 for all models by default")
  moved MoE and hybrid models onto the same runner, so from 0.29 every model kind is estimated by
  MRV2's ``profile_cudagraph_memory`` (``vllm/v1/worker/gpu/cudagraph_utils.py``, source-index files
  57392530080 / 59275043150): one throw-away ``capture_model()`` into a throw-away pool in which
  PIECEWISE (and encoder / speculator) graphs are *measured in full* and only the FULL graphs are
  sampled -- the two largest (``_FULL_GRAPH_PROFILING_SAMPLES = 2``), total = first + (N_FULL - 1) x
  max(second, 1 MiB) (``_extrapolate_full_graph_memory``).  That was read as "the estimate is the capture
  itself (ratio ~1)"; the rows printing both say the extrapolation over-counts MRV2's shared pool --
  estimate / captured 1.65 and 1.31 (rows 184 / 185), ``graph_estimate_scale`` 1.48 -- and that MRV2
  captures 0.37 x the graph model fitted on MRV1 (``overheads.MRV2_GRAPH_RATIO``, branch mrv2graphs).
  Release sdists (branch versionaudit): MRV2's ``profile_cudagraph_memory`` is ``return 0`` ("It is TBD whether
  we keep this API") in every sdist from 0.18.0 to 0.28.0 (v1/worker/gpu/model_runner.py:620-622 in 0.22.0,
  680-682 in 0.25.0, 843-845 in 0.28.0) and the estimate from 0.29.0 (model_runner.py:896-898 ->
  gpu/cudagraph_utils.py, ``_FULL_GRAPH_PROFILING_SAMPLES = 2`` at :712); 0.29.0's ``use_v2_model_runner``
  (config/vllm.py:645) defaults every model to MRV2 -- the 0.29 boundary is exact.  The dense default is already
  in the 0.25.0 sdist, not only 0.25.1: config/vllm.py:557-570 (``_is_default_v2_model_runner_model``: not
  hybrid, not attention-free, ``... or not model_config.is_moe``), so 0.25.0 dense models reserve no graph
  memory either and the 0.25 profile covers the whole minor.  Earlier, MRV2 was the default for a few named
  architectures (``DEFAULT_V2_MODEL_RUNNER_ARCHITECTURES``, config/vllm.py:69 / 69 / 68): 0.22.0
  {Qwen3ForCausalLM} and 0.23.0 {Llama, Mistral, Qwen3}ForCausalLM, unquantized non-MoE only (config/vllm.py:532
  / :558); 0.24.0 {Qwen3, Llama, Mistral, DeepseekV2, Qwen2Moe, GraniteMoe}, any quantization; 0.25-0.28 name
  MoE architectures (DeepseekV2, Qwen2Moe, GraniteMoe, then Inkling, LongcatFlashNgram, KimiK3, DeepseekV4) beside
  the dense default.  Those ran with a 0 graph estimate and MRV2's sampler: ``MRV2_NAMED_ARCHS`` /
  ``named_mrv2``, applied per model by ``tables.ModelTables`` on the job's version (branch versionaudit; the
  0.21 profile had every model on MRV1).
- v0.26.0: the graph estimate of Gated-DeltaNet hybrids holds a profiling transient
  that grows with ``max_num_batched_tokens`` (issue #50780: 0.23 -> 0.26 estimate 0.56 -> 4.2 GiB
  for the same graph set; open at 0.28): the FLA chunk-scan live set of one GDN layer run at T
  tokens on the rank's ``linear_num_value_heads / tp`` heads (``overheads.gdn_transient_bytes_per_token``,
  the terms of vLLM's ``gdn/chunk_workspace.py`` @569ff4c6), scaled by ``gdn_transient_scale``; the
  graphs reuse the pool it grew, so the estimate is the larger of the two, not their sum (issue
  #52872's sweep: flat 0.52 GiB at T <= 4096, 0.89 at 8192; row M10 at TP4 shows none).
- 0.27.1 (row P01, ``gpu_worker.py:789``) prints "Actual usage is X GiB for consumed
  memory (weights + non-torch), Y GiB for peak activation, and Z GiB for CUDAGraph
  memory": peak activation there includes the applied graph estimate; "CUDA graph
  pool memory: A (actual), E (estimated)" is logged whenever an estimate was taken (the line is in every sdist from
  0.18.0, v1/worker/gpu_worker.py:618; 0.18.0 takes the estimate on CUDA without --enforce-eager,
  gpu_worker.py:397-399).  PR #51590 (measure every capture instead of extrapolating) is open, so the estimate
  is still the extrapolation.
- Capture sizes (``vllm/config/vllm.py`` ``_set_cudagraph_sizes``, 0.11+):
  ``[1, 2, 4] + range(8, 256, 8) + range(256, max + 1, 16)`` with ``max =
  min(max_num_seqs x 2, 512, max_num_batched_tokens)``; FULL_AND_PIECEWISE by
  default from 0.11.  0.10 captured ``[1, 2, 4] + range(8, min(max_num_seqs x 2, 512) + 1, 8)`` (67 sizes from
  max_num_seqs 256 up; ``capture_sizes``).  Release sdists: FULL_AND_PIECEWISE is the default in 0.11.0
  (config/__init__.py:361-367; 0.10.2's config/__init__.py:3389-3393 PIECEWISE), but 0.11.0 still builds the 0.10
  step-8 list (config/__init__.py:590-599 from ``SchedulerConfig.cuda_graph_sizes = [min(max_num_seqs * 2, 512)]``,
  config/scheduler.py:227): the 16-step list above 256 arrives in 0.11.1 (config/vllm.py:807-812).  Since branch
  patchver 0.11.0 is its own profile (capture rule ``step8_full``: the step-8 list for PIECEWISE and the sizes up to
  max_num_seqs of it for FULL, vllm 0.11.0 sdist v1/worker/gpu_model_runner.py:3443-3465): 67 + 67 sizes at
  max_num_seqs 1024 against 0.11.1's 51 + 51 (graphs sit outside the budget there: ``cuda_graph_gib`` only).  The fitted graph constants belong to 51 sizes
  (0.19, max_num_seqs 1024: "PIECEWISE=51 (largest=512), FULL=51"); FULL (decode) graphs
  stop at max_num_seqs (``capture_sizes``).
- Sampler in the profile run: 0.10-0.16 measure ~23.6 bytes per logit more than
  0.17+ (Qwen3-14B 5.64 -> 2.23 GiB between 0.16 and 0.17, rows 81-84; Llama-3.1-8B
  4.76 at 0.11 vs 1.89 at 0.19) -- the V1 sampler's dummy run was slimmed in 0.17.  The extra is
  the sort-based PyTorch top-k/top-p (``logits.sort`` values + int64 indices, softmax, cumsum, mask).
  ``TopKTopPSampler`` samples with FlashInfer instead -- no sort -- whenever FlashInfer is installed and
  ``VLLM_USE_FLASHINFER_SAMPLER`` is unset ("In V1, None means True") only in 0.10.0-0.11.0 (sdists:
  v1/sample/ops/topk_topp_sampler.py:46 ``is not False`` in 0.11.0); from 0.11.1 it is opt-in
  (topk_topp_sampler.py:34 ``if envs.VLLM_USE_FLASHINFER_SAMPLER:``) -- until 0.21.0 defaults the variable on again
  (vllm 0.21.0 sdist envs.py:725-729; branch platformaudit), which moves nothing here: the 0.17+ profiles carry no
  sort extra --, and 0.17.0 adds the Triton top-k/top-p
  (v1/sample/ops/topk_topp_triton.py, new in the 0.17.0 sdist; topk_topp_sampler.py:252) -- the 0.17 boundary.  Row 80 (Mistral-Small-3.2, 0.11: 2.12 GiB of activation for 1024 x
  131072 logits) is the FlashInfer case; ``Matrix.flashinfer_sampler`` (job key, or the env variable
  in a pasted command line) drops the extra.
- Non-torch with a TP group: ``nt_comm_base`` is the NVSwitch (NVLink SHARP) figure the rows were fitted
  on; ``non_torch_gib(..., nvls=False)`` gives GPUs without NVLS ``nt_single + nt_comm_per_rank x group``
  (catalog ``interconnect``; overheads.py "non-torch", docs/decisions.md).  vLLM's custom all-reduce
  buffers are allocated before the start-up snapshot: outside the budget (overheads.CUSTOM_AR_GIB).
- Scheduler defaults: ``max_num_batched_tokens`` / ``max_num_seqs`` 8192 / 1024 for the API server on >= 70 GiB
  GPUs except A100, else 2048 / 256 (``vllm/engine/arg_utils.py``), in every sdist 0.10.0-0.34.0; from 0.28.0
  GPUs of >= 160 GiB get 16384 / 1024 (engine/arg_utils.py:2582-2590; ``overheads.default_scheduler_limits``),
  from 0.33.0 GB10 the small defaults.  Chunked prefill always on in V1;
  prefix caching on by default for V1 (hybrids: estimate/hybrid.py); block size 16 for attention (hybrids raise it
  to cover a mamba page -- ``kvcache.py``).

Numbers marked "fitted" come from ``scripts/calibrate_overheads.py --profiles`` on
the rows named in ``evidence``; "inherited" means no public row of that range
shows the term, so the previous profile's value is kept (and ``docs/accuracy.md``
says so).

The rules that apply a profile's fields live beside it and are re-exported here:
``capture_sizes.py`` (how many CUDA graphs a job captures: ``capture_rule``,
``capture_batched_tokens``) and ``model_runner.py`` (which models run on Model Runner
V2: ``mrv2`` and the architectures 0.22-0.28 name).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from . import overheads as oh
from .capture_sizes import (MODEL_CAPTURE_OVERRIDE_FROM, MODEL_MAX_CAPTURE, OVERRIDE_CAPTURE,  # noqa: F401
                            OVERRIDE_CAPTURE_0110, REFERENCE_CAPTURE_SIZES, _size_list, _sizes_up_to, _step8_count,
                            capture_ceiling, capture_sizes, graph_scale, graphs_off, model_max_capture,
                            spec_rounded_sizes, wide_sm100)
from .model_runner import (_MRV2_024, _MRV2_025, _MRV2_026, _MRV2_027, MRV2_NAMED_ARCHS,  # noqa: F401
                           model_runs_mrv2, named_mrv2, runs_mrv2)


@dataclass(frozen=True)
class VllmProfile:
    """How one range of vLLM releases sizes the KV cache (see the module docstring)."""

    name: str                       # first release of the range, e.g. "0.20" (= 0.20.0) or "0.20.1"
    first: tuple[int, ...]          # (major, minor) = the .0 release, or (major, minor, patch)
    graphs_in_budget: bool          # VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS default
    graph_estimate_scale: float     # estimate taken from the budget / graph memory actually captured
    dense_graph_estimate: bool      # False: dense models' runner estimates 0 (MRV2 0.25-0.28)
    gdn_transient_scale: float      # hybrid GDN / KDA: x the FLA chunk-scan live set the estimate holds (0 = none)
    sampler_extra_bytes: float      # bytes per logit the profile-run sampler adds over the 0.19 fit
    nt_single: float                # non-torch GiB, one GPU
    nt_comm_base: float             # non-torch GiB with a TP (or TP x DP for MoE) group
    nt_comm_per_rank: float
    # "step8" (0.10: [1, 2, 4] + multiples of 8, PIECEWISE only), "step8_full" (0.11.0: that list, FULL_AND_PIECEWISE)
    # or "max_num_seqs" (0.11.1+: multiples of 16 above 256)
    capture_rule: str
    log_format: str                 # what the start-up log prints (for readers of the logs)
    commits: tuple[str, ...]        # vLLM commits / PRs / issues this profile follows
    evidence: str                   # which log rows fitted or checked it
    notes: str = ""
    # which models run on Model Runner V2, whose profile-run sampler is leaner (runs_mrv2): "" none,
    # "dense" (0.25-0.28: dense text models only; the 0.25.0 sdist has it), "all" (0.29+, PR #53183)
    mrv2: str = ""
    # how the start-up log's "GPU KV cache size" counts tokens: False ``num_blocks // n_groups x min block
    # size`` (before 0.21), True ``int(max_concurrency x max_model_len)`` (0.21+: vLLM PR #38364 / issue
    # #40691, "[Bugfix] Fix incorrect KV cache log output": the groups share one pool and sliding / state
    # groups need fewer blocks per request, so the old line undercounted hybrids).  Dated by the logs: 0.19.0
    # rows 92 / 93 print block multiples that are not concurrency x length (gemma-3-12b: 130,304 vs 15.88 x
    # 8192), a Gemma 4 A100 report (vLLM issue "Massive increase (~10x) in KV Cache capacity for Gemma 4 in
    # v0.21.0": ~55k tokens at 0.20.0, ~525k at 0.21.0 for the same ~50 GB) and rows P01 / P02 (0.26+:
    # 820,013 = 1.0427 x 786,432, not a block multiple) and 54.  The KV budget is the same either way.
    tokens_from_concurrency: bool = False
    # hybrid GDN: state-sized buffers per dummy request charged to the profile run's activation
    # (overheads.GDN_STATE_COPIES; 0 = none).  vLLM's GDN layers skip their core in the profile run in
    # every release read (no attention metadata), so only the profile whose row fitted it keeps it
    # (0.10, row 71: an unattributed 0.10.2 term, docs/accuracy_hybrids.md "Row 174")
    gdn_state_copies: float = 0.0
    # vLLM's ``CacheConfig.DEFAULT_BLOCK_SIZE``: the KV block size without ``--block-size`` (16; 64 from 0.34.0:
    # vllm 0.34.0 sdist config/cache.py:185, 16 in 0.33.0 config/cache.py:185)
    default_block_size: int = 16
    # the extensible KV cache on by default (0.34.0: config/cache.py:395-406, "If unspecified, enabled on CUDA and
    # ROCm unless kv_cache_memory_bytes is set"): the cache is sized from the memory measured after warm-up and
    # graph capture (``kv_budget``), and an unset ``--gpu-memory-utilization`` means 1.0 (config/cache.py:494-500)
    extensible_kv_cache: bool = False
    # 0.20.1+: ``max_num_batched_tokens`` is appended to the default capture list when it is the list's maximum
    # (``min(2 x max_num_seqs x q, 512)`` or a model's own maximum is above it) and falls between the grid's sizes:
    # vllm 0.20.1 sdist config/vllm.py:1527-1532 ("ensure max_num_tokens is captured if within max capture size"),
    # absent from the 0.20.0 sdist's ``_set_cudagraph_sizes`` (config/vllm.py:1513-1523: the grid, then de-duplicated)
    capture_batched_tokens: bool = False
    extras: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The releases the profile covers: "0.17-0.19", "0.20.0" (one patch), "0.20.1-0.24", "0.34+"."""
        nxt = next_profile(self)
        if nxt is None:
            return f"{self.name}+"
        major, minor, patch = release_of(nxt.first)
        if patch:
            last = f"{major}.{minor}.{patch - 1}"
            if release_of(self.first) == (major, minor, patch - 1):
                return last                             # a one-release profile: "0.20.0", "0.11.0"
        else:
            last = f"{major}.{minor - 1}"
        return self.name if last == self.name else f"{self.name}-{last}"


# 0.20 (and, with another "GPU KV cache size" line, 0.21-0.24: one budget, two profiles)
_P020 = VllmProfile(
    name="0.20", first=(0, 20), graphs_in_budget=True, graph_estimate_scale=0.89,
    dense_graph_estimate=True, gdn_transient_scale=0.0,
    sampler_extra_bytes=0.0, nt_single=0.25, nt_comm_base=1.991, nt_comm_per_rank=0.041,
    capture_rule="max_num_seqs",
    log_format="'CUDA graph memory profiling is enabled (default since v0.21.0). The current "
               "--gpu-memory-utilization=U is equivalent to ... without'",
    commits=("v0.20.0 default VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=1 (logs of 0.20.0 / 0.20.2; the "
             "log text says v0.21.0)", "PR #45197 (closed)"),
    evidence="estimate/actual ratio: median of the 36 v0.19 rows that print both (same estimator); its terms are those "
             "of 0.20.1-0.24, checked on that range's rows; no scored row runs here since branch patchver (0.20.0 only: row "
             "167 is not runnable; rows 171 and 175 are 0.20.1+ and run under 0.20.1).  Row 171 (branch loghunt; 0.20.x by its log lines, "
             "Qwen3-Reranker-8B = Qwen3-8B geometry, offline LLM() at util 0.85 / 1,024 context on an RTX PRO 6000 "
             "Blackwell Server Edition): weights +0.04 %, KV -0.44 %, tokens -0.44 % (-0.24 % at 8,192 batched tokens).  "
             "Row 167 (0.20.0, Qwen3.6-35B-A3B NVFP4 on a WSL2 32 GB Blackwell card): no offline config, not runnable; "
             "rows 166 (a 0.20.1rc1 nightly, same card) and 170 (0.20.2, nvidia/Gemma-4-26B-A4B-NVFP4 on an RTX 5090 "
             "under WSL2, branch loghunt) already print 0.21's token line: it is 0.20.1's (profile 0.20.1).  Row 175 "
             "(0.20.1.dev1, GLM-5.1-FP8 TP 8 on H200, eager; KV -10.8 %) is not a release term (branch sparse175, "
             "docs/decisions.md 'Row 175 pinned from the sdists'): the budget path is the same code in the 0.19.1 and "
             "0.20.0 sdists, and v0.20.0's own profile holds >= 2.49 GiB of torch memory (fused-MoE workspaces 1.50, "
             "logits 0.89, hidden states 0.11) where the log leaves 1.58 for activation + non-torch -- that start's "
             "non-torch increase was <= -0.91 GiB, which no non-negative term prices; not refitted",
    notes="graph estimate (linear extrapolation of the 2nd capture) taken from the budget")


# The 0.19 fit (overheads.py) is the reference: NT_SINGLE 0.25, NT_COMM 1.991 + 0.041 g.
PROFILES: tuple[VllmProfile, ...] = (
    VllmProfile(
        name="0.10", first=(0, 10), graphs_in_budget=False, graph_estimate_scale=0.0,
        dense_graph_estimate=True, gdn_transient_scale=0.0,
        sampler_extra_bytes=23.6, nt_single=0.13, nt_comm_base=0.45, nt_comm_per_rank=0.05,
        capture_rule="step8",
        log_format="'Available KV cache memory', 'GPU KV cache size', 'Graph capturing finished ... took'; "
                   "0.10.2 adds 'Free memory on device ... Actual usage is W weight, A peak activation, "
                   "N non-torch, G CUDAGraph'",
        commits=("gpu_worker.py@0012cf691b7e69423244d2b1405f4b6832156e19",),
        evidence="F02/F03 (vllm_logs_2026.csv: refused starts, verdict and largest length); rows 177 / 178 "
                 "(branch loghunt23, the first started 0.10 rows with KV figures: Llama-3.2-1B on a 0.10.1.dev "
                 "source build, 48 GB-class card, API-server defaults, DEBUG breakdown -- weights -0.1 %, "
                 "activation 0.45 GiB = the log with its logged FlashInfer sampler, KV -0.3 %; "
                 "Qwen3-Reranker-0.6B (Qwen3-0.6B geometry) on 0.10.1, RTX 3090, util 0.258, offline LLM() at "
                 "8,192 batched tokens -- KV -2.6 %, tokens -2.6 %); row 179 (0.10.2, Qwen3-235B-A22B-FP8 TP 8 + EP "
                 "on 8 PCIe L40S, its 'Actual usage' line itemized: weights -0.1 %, KV -5.0 %, tokens -4.7 %; "
                 "non-torch 0.53 modelled (nt_single + 0.05 x 8, no NVLS) vs 0.18 logged, activation +0.21): three "
                 "started rows, all below the log, nothing refitted (the PCIe group term rests on this one row); "
                 "rows 32 and 71 have no runnable config (llava-1.6, hybrid Qwen3-Next): the numeric terms are "
                 "inherited",
        notes="graphs captured after KV sizing (outside the budget); PIECEWISE only; sampler and "
              "non-torch as 0.11 (inherited: no 0.10 row prints a TP>1 dense non-torch figure); hybrid GDN "
              "models keep row 71's fitted profile-run term (GDN_STATE_COPIES: not vLLM's GDN code, which "
              "returns early without attention metadata; 0 from 0.11)",
        gdn_state_copies=oh.GDN_STATE_COPIES),
    VllmProfile(
        name="0.11", first=(0, 11), graphs_in_budget=False, graph_estimate_scale=0.0,
        dense_graph_estimate=True, gdn_transient_scale=0.0,
        sampler_extra_bytes=23.6, nt_single=0.13, nt_comm_base=0.45, nt_comm_per_rank=0.05,
        capture_rule="step8_full",
        log_format="DEBUG 'weights memory / torch peak memory increase / non-torch forward increase'",
        commits=("gpu_worker.py@35d5cda123ec28581759b6d34cde8052314fb1e6", "PR #30515 (estimate, off)"),
        evidence="rows 73-80 (llm-d-benchmark 0.11.0 H100), C05-C09 (inference-sim 0.11.0 H100 logs); non-torch with a "
                 "TP group: 2 rows (75, 79); the terms were fitted with rows 81 / 82 (llm-d-planner version sweep "
                 "0.15 / 0.16), which run under 0.11.1 since branch patchver",
        notes="FULL_AND_PIECEWISE from 0.11.0, but 0.11.0 still builds the 0.10 step-8 list (FULL graphs for its sizes "
              "up to max_num_seqs); graphs outside"),
    VllmProfile(
        name="0.17", first=(0, 17), graphs_in_budget=False, graph_estimate_scale=0.0,
        dense_graph_estimate=True, gdn_transient_scale=0.0,
        sampler_extra_bytes=0.0, nt_single=0.25, nt_comm_base=1.991, nt_comm_per_rank=0.041,
        capture_rule="max_num_seqs",
        log_format="0.18+: 'Estimated CUDA graph memory: X GiB total' (not subtracted)",
        commits=("PR #30515",),
        evidence="rows 83-142 (0.17/0.18 sweep, 59 llm-d-planner v0.19.0 H100 logs): the fit in overheads.py",
        notes="the reference fit; 0.17 printed non-torch 0.13 on one GPU, 0.18-0.19 0.25"),
    _P020,
    # 0.20.1: the budget of 0.20, a different "GPU KV cache size" line (vllm 0.20.0 sdist
    # v1/core/kv_cache_utils.py:1694-1697 block multiple; vllm 0.20.1 sdist kv_cache_utils.py:1706 concurrency x length)
    replace(
        _P020, name="0.20.1", first=(0, 20, 1), tokens_from_concurrency=True, capture_batched_tokens=True,
        log_format="as 0.20; 'GPU KV cache size' = int(max_concurrency x max_model_len)",
        commits=("PR #38364 / issue #40691 ('GPU KV cache size' = int(max_concurrency x max_model_len))",
                 "vllm 0.20.1 sdist v1/core/kv_cache_utils.py:1706 (first release with it; 0.20.0 :1694-1697 blocks)",
                 "PR #45197 (closed)"),
        evidence="estimate/actual ratio: median of the 36 v0.19 rows that print both (same estimator); "
                 "row L01 (0.21.0, Qwen3-8B on an RTX A5000, KV -8.2 %: the printed graph estimate 0.52 is 0.24 GiB below the "
                 "modelled 0.76, 3.8 of the points -- -4.5 % with the printed one -- and the device total, derived from "
                 "two rounded figures, spans 23.25-23.81 GiB, +-4.3 points; LMCache's connector is built after the KV "
                 "budget: docs/decisions.md, branch wslrows); row 143 "
                 "(0.22.0, Qwen2.5-7B on a 48 GB-class card, KV +2.4 %: device total derived from the log's "
                 "utilization equivalence, +-1 GiB); row N01 (0.24.0, Qwen2.5-0.5B on an RTX 4090, weights "
                 "-0.6 %, KV -1.6 %; the only row of the range printing estimate and capture: 0.28 / 0.38); "
                 "failed start N03F (0.23.0, Qwen2.5-VL-7B at util 0.22 on an A100: no_fit for the encoder profile of "
                 "the max_model_len-sized dummy video, KV -13.29 GiB vs -14.28 logged); row 168 (0.22.1, Gemma-4-E4B-it "
                 "bf16 on an RTX 3090 Ti, defaults: weights -0.6 %, KV +0.5 %, tokens +0.5 %); row 169 (0.23.0, "
                 "Gemma-4-31B-it bf16 on a 96 GB-class card, 8192 batched tokens: weights -0.3 %, KV -0.3 %, tokens "
                 "-0.3 %).  Five started rows, errors of both signs (-8.2, -1.6, +2.4, +0.5, -0.3 %): no term is off "
                 "in one direction, nothing refitted.  The 0.20.1 / 0.20.2 rows (166, 170, 183; 171 by its log line "
                 "numbers) run here at their own version since branch patchver (they were run as 0.21 before, which "
                 "also gave them 0.21's max_split_size_mb weights rule).  Row 166 (a 0.20.1rc1 nightly printing this token line, "
                 "Nemotron-Cascade-2-30B-A3B NVFP4 on a WSL2 32 GB Blackwell card, 32,768 batched tokens, NVIDIA's "
                 "Nano NVFP4 layout): weights -0.07 %, KV GiB and tokens -2.5 % since branch weights29 priced the "
                 "SM 12.0 CUTLASS NVFP4 MoE layout (the non-gated experts' 1856-wide intermediate padded to 1920: "
                 "+0.53 GiB; weights were -2.9 %, KV +11.7 %; +36 % before branch mambaact's Mamba-2 mixer width, "
                 "docs/accuracy_hybrids.md).  Row 170 "
                 "(0.20.2 printing this token line, branch loghunt: nvidia/Gemma-4-26B-A4B-NVFP4 on the same kind of "
                 "card, util 0.85, 256,000 context, 16,384 batched tokens, 2 sequences, fp8 KV): weights +0.02 %, KV "
                 "GiB and tokens +54 % (7.07 vs 4.58 GiB; the log leaves 4.59 GiB of budget to activation, non-torch "
                 "and its 0.26 GiB graph estimate, the profile 2.14; at the logged KV memory the layout reproduces "
                 "1.12x / 286,007 tokens) -- the same direction as 166 on the same card type, not refitted",
        notes="as 0.20; the log's 'GPU KV cache size' is int(max_concurrency x max_model_len) (from 0.20.1)"),
    VllmProfile(
        name="0.25", first=(0, 25), graphs_in_budget=True, graph_estimate_scale=0.89,
        dense_graph_estimate=False, mrv2="dense", gdn_transient_scale=0.0,
        sampler_extra_bytes=0.0, nt_single=0.25, nt_comm_base=1.991, nt_comm_per_rank=0.041,
        capture_rule="max_num_seqs",
        log_format="as 0.20",
        commits=("issue #49224", "PR #49233 (closed)"),
        evidence="rows 164 / 165 (0.25.1, one L40S, one author: Gemma-4-26B-A4B-it fp8 at util 0.92 / 32k and "
                 "Gemma-4-E4B-it bf16 at util 0.85 / 16k), the first scorable 0.25 start-ups: 165 KV -0.2 %, tokens "
                 "-0.2 %; 164 weights -0.3 %, KV GiB +0.3 %, tokens +7.3 %: KV memory right, the per-request footprint "
                 "7 % larger at the 2,048 default -- vLLM 0.22+ raises a defaulted max_num_batched_tokens to a "
                 "multimodal prefix LM's largest item (PR #43051; 26B / 31B attend bidirectionally over images), "
                 "2,496 for Gemma 4 (encoder.batched_tokens_floor): tokens +0.03 %, KV +0.06 %; E4B is not a prefix "
                 "LM and keeps 2,048.  Three rows with row 156 below: terms inherited from 0.20 (the dense "
                 "rule from issue #49224 and row 68), nothing refitted.  Row N02 (0.25.0, Llama-3.1-8B eager on an RTX 3090: 36,640 KV tokens) "
                 "is listed, not scored: its entry point and so max_num_batched_tokens are not shown "
                 "(API-server 2048: -3.1 %; LLM-class 8192: -13.9 %).  Row 156 (0.25.0, DeepSeek-V4-Flash TP 2 on "
                 "two PCIe RTX PRO 6000, custom all-reduce off, MTP k=2, 1M context, MTP draft priced since branch dsv4mtp): weights "
                 "-0.3 % (DeepGemmFP4Experts' checkpoint layout, branch mxfp4be), KV GiB +14.0 %, tokens +12.6 % "
                 "(branch sm12mem read the SM 12.0 profile run: the indexer's 1.29 GiB K-gather workspace and "
                 "FlashInfer's 128 MiB priced, the FlashMLA gather dropped, 0.25's logged-concurrency formula; "
                 "left: 0.57 GiB of measured graph estimate and the indexer's 512 MiB transient logits buffer; "
                 "docs/accuracy_specdecode.md): not a profile term, nothing refitted",
        notes="dense models on Model Runner V2 estimate 0 -> graphs outside the budget for them; the 0.25.0 "
              "sdist already defaults dense models to MRV2 (config/vllm.py:557-570) whose estimate is 0 "
              "(v1/worker/gpu/model_runner.py:680-682), so the whole 0.25 minor behaves so (branch versionaudit; "
              "the earlier note took 0.25.0 for a 0.20 release)",
        tokens_from_concurrency=True, capture_batched_tokens=True),
    VllmProfile(
        name="0.26", first=(0, 26), graphs_in_budget=True, graph_estimate_scale=1.64,
        dense_graph_estimate=False, mrv2="dense", gdn_transient_scale=oh.GDN_TRANSIENT_SCALE,
        sampler_extra_bytes=0.0, nt_single=0.25, nt_comm_base=1.991, nt_comm_per_rank=0.041,
        capture_rule="max_num_seqs",
        log_format="'CUDA graph pool memory: A GiB (actual), E GiB (estimated)' (as from 0.18) and (0.27.1, row P01) "
                   "'Actual usage is X GiB for consumed memory (weights + non-torch), Y GiB for peak activation, "
                   "and Z GiB for CUDAGraph memory' (Y includes the applied estimate)",
        commits=("issue #50780 (GDN transient, open)", "issue #49224 (dense MRV2 estimate 0, until PR #53306)",
                 "gdn/chunk_workspace.py@569ff4c6 (FLA chunk-scan live set)",
                 "gdn/qwen_gdn_linear_attn.py@00545a8a (profile run: kernels warmed at T = 64 only)",
                 "issue #52872 (estimate vs max_num_batched_tokens at TP1)"),
        evidence="graph estimate / captured on rows 34 (GLM-5.2 TP4, 1.21), M10 (Qwen3.5-35B-A3B TP4, 0.99), "
                 "P01 (0.27.1, 2.06), P02 (>=0.26, 2.18): median 1.64.  KV checked on 7 dense starts: rows 68, "
                 "144, 35, N04, N05 (one GPU, -2.4 to +3.0 %; -2.4 to +1.3 % with the MRV1 sampler form) and N08 / N09 (0.27.1, Qwen3-32B TP 2 / PP 2 on "
                 "two PCIe-only RTX PRO 6000 at util 0.426: KV tokens +4.6 % / +18 %).  N08 was -31 % with the "
                 "NVSwitch-fitted non-torch group term (1.991 + 0.041 g); GPUs without NVLink SHARP now get "
                 "nt_single + 0.041 g (overheads.py, branch customar): -10 %; the rest was the MRV1 sampler form "
                 "charged to a dense model on Model Runner V2 (2.23 GiB modelled, at most 1.33 left by the log; "
                 "MRV2's sampler keeps one fp32 copy of the logits: 1.02, branch n08act).  Rows 150-152 (0.27.1, Qwen3-235B-A22B-FP8 on 4 "
                 "PCIe RTX PRO 6000, util 0.90, 32k): TP 4 KV tokens +0.8 % (-5.4 % with the NVSwitch term; the "
                 "log's whole non-KV overhead beyond weights is 2.46 GiB: 'consumed' - weights 1.70 + peak "
                 "activation 0.76, the applied graph estimate inside them, where the model puts 0.41 non-torch + "
                 "0.75 activation + 1.07 graph estimate = 2.23, was 3.97), TP 4 + EP -0.7 % (was -6.9 %), PP 4 +8.9 % (with N09's +18 %, +8.5 % while N09's last stage carried the MRV1 sampler: "
                 "PP stages on PCIe cost ~1.2-2 GiB more than NT_PP_ONLY 0.07 + activation; two rows, one card "
                 "type: not refitted; vLLM's code puts nothing else on a first stage before the KV snapshot -- no "
                 "sampler, receive buffer, PP send / recv or NCCL P2P connection there -- and the per-stage spread "
                 "of row 152 points to a per-rank transient such as a cold torch.compile in the profile window, "
                 "issues #54122 / #54383: docs/decisions.md, branch ppgap).  MRV2 dense rows printing activation: 35 / N05 / N04 0.25 / 0.31 / 1.06 "
                 "logged, 0.22 / 0.29 / 1.17 modelled (MRV1 sampler form 0.52 / 0.55 / 1.17).  Rows 153-155 (0.27.1, "
                 "Qwen2.5-7B BF16 / FP8-dynamic / GPTQ-Int4 on a WSL2 RTX 4090, one session on the desktop of rows 35 / N05, "
                 "which are within 2 %): +34 / +9.0 / +6.0 %.  vLLM 0.27.1 has no WSL2-only device allocation: without "
                 "VLLM_WSL2_ENABLE_PIN_MEMORY=1 Model Runner V2 does not start there (UVA buffers need pinned memory), "
                 "with it (this desktop) the path is Linux's.  153 is listed, not scored: its 0.75-0.94 GiB of extra "
                 "non-KV charge over the session's quantized starts is not held once serving (nvidia-smi), a profile-"
                 "window change vLLM counts device-wide (Windows' VRAM on this card moved >= 1.3 GiB within minutes); "
                 "154 / 155 keep 0.9-1.1 GiB not in the model and not in the code read (docs/decisions.md, branch "
                 "wslrows).  Rows 172 / 173 (0.27.1, the same author's later notes on the same card, branch loghunt: "
                 "Qwen3-8B-FP8 at 2,048 / Qwen3-14B-FP8 at 8,192, util 0.90, defaults, tokens only): -0.7 % / +30.6 % "
                 "(in KV memory +0.08 / -1.36 GiB: the session-to-session spread of 153-155 again).  One card type "
                 "per layout: reported, not refitted",
        notes="hybrid Gated-DeltaNet models: estimate = max(graphs, 1.27 x FLA chunk-scan set x "
              "max_num_batched_tokens on linear_num_value_heads / tp heads); dense models "
              "still estimate 0 (row 68: 0.28.0 dense Qwen3-14B on an L40S; row 144: 0.26.0 dense "
              "Llama-3.1-8B on an A40, KV tokens +1.3 % with no graph reserve)",
        tokens_from_concurrency=True, capture_batched_tokens=True),
    VllmProfile(
        name="0.29", first=(0, 29), graphs_in_budget=True, graph_estimate_scale=1.48,
        dense_graph_estimate=True, mrv2="all", gdn_transient_scale=oh.GDN_TRANSIENT_SCALE,
        sampler_extra_bytes=0.0, nt_single=0.26, nt_comm_base=1.991, nt_comm_per_rank=0.041,
        capture_rule="max_num_seqs",
        log_format="'Actual usage is X GiB for consumed memory (weights + non-torch), Y GiB for peak "
                   "activation, and Z GiB for CUDAGraph memory' (Y includes the applied estimate)",
        commits=("PR #53306 (MRV2 reserves graph memory, merged 2026-08-21)",
                 "PR #53183 (MRV2 for all models by default, MoE and hybrids included)",
                 "gpu/cudagraph_utils.py profile_cudagraph_memory (source-index files 57392530080 / 59275043150: "
                 "PIECEWISE measured, FULL = first + (N - 1) x 2nd of the two largest)",
                 "gpu/model_runner.py (source-index file 71282668630: profile_cudagraph_memory -> cudagraph_utils)",
                 "PR #57865 (open; its review diff at gpu/cudagraph_utils.py:931 quotes upstream's "
                 "'measured - sum(mem_samples) + full_estimate')",
                 "PR #51590 (open)"),
        evidence="Graphs (branch mrv2graphs, docs/decisions.md 'Model Runner V2 graph memory'): MRV2 captures its "
                 "FULL and PIECEWISE graphs into one pool (PIECEWISE first), and the captures its starts log are "
                 "0.29-0.67 x the graph model fitted on Model Runner V1 (rows 33, 184, 185, 35, N04: "
                 "overheads.MRV2_GRAPH_RATIO 0.37, the median), so every MRV2 model's captured graph memory is "
                 "0.37 x that model.  The estimate taken from the budget measures the PIECEWISE graphs and "
                 "extrapolates the FULL ones from the two largest (first + (N - 1) x second, 1 MiB at least: vllm "
                 "0.29.0 sdist, v1/worker/gpu/cudagraph_utils.py:718-832), which over-counts the shared pool: the two "
                 "rows printing both figures give estimate / captured 1.65 (184: 0.38 / 0.23) and 1.31 (185: 0.38 / "
                 "0.29), median 1.48 -- 0.55 x the V1 model, against the printed 0.38 / 0.38 / 0.35 GiB of rows "
                 "184 / 185 / 182 (modelled 0.43 / 0.43 / 0.36; the V1 model at scale 1.0 put 0.79 / 0.79 / 0.66).  "
                 "KV tokens at scale 1.0 on the V1 model -> now: 33 +0.7 -> +1.4 %, 161 -1.0 -> +2.9 %, 162 -0.2 -> "
                 "+1.3 %, 163 +0.8 -> +2.5 %, 185 -17.8 -> -4.5 %, and the Docker-on-WSL2 graph-mode starts 180 / 182 "
                 "+17.9 / +16.9 -> +33 / +32 %, 184 +53.6 -> +78 %: their graph estimates are now the printed ones, "
                 "and what they keep beyond them is non-torch memory (184 logs 0.95 GiB 'consumed' beyond its weights, "
                 "185 on the same card 0.25; 181, 180's command with --enforce-eager, -2.4 %).  Rows 157-160 "
                 "(vLLM 0.30 on a GB10, util 0.55, 32k; listed, not scored: the bench's other engine arguments are "
                 "not shown) print the applied estimate only as a utilization equivalence: 0.009 / 0.0044 / 0.010 "
                 "of the total (~1.08 / 0.53 / 1.20 GiB for Qwen3-30B-A3B-FP8 / GLM-4.7-Flash-FP8 / Qwen3-14B-FP8).  "
                 "Weights (branch load29, docs/decisions.md): 'Model loading took' counts the caching allocator's "
                 "blocks, and from 0.21 vLLM loads under max_split_size_mb=20 (gpu_worker.py:493), so every "
                 "parameter of >= 20 MiB keeps its whole 2 MiB-rounded block (weights.allocator_unsplit_bytes): "
                 "rows 180-182 (Qwen2.5-1.5B) 2.88 -> 2.97 GiB (2.98 logged), 184 / 185 7.50 -> 7.61 on the "
                 "checkpoint's own config (its 262,144-position rotary cache; 7.64 logged: the rest is freed rope "
                 "transients reused by two down_proj blocks, 0.03); rows 33 / 161 have 2 MiB-multiple tensors "
                 "(exact before and after).  Quantized schemes by the same rule on the parameters each layer holds "
                 "after loading (branch quantalloc): rows 162 / 163 (AWQ -> Marlin repack) 9.30 -> 9.42 (9.44 "
                 "logged).  GB10 rows 157-160 (listed): "
                 "weights -0.19 / -5.94 / -0.78 / -0.71 % (158: the unsloth checkpoint's bf16 layers are not offline; "
                 "+0.40 GiB of it is MLA's dequantized kv_b_proj copy, now priced)",
        notes="dense models estimate graphs again (PR #53306).  The release that first ships it is not "
              "in the logs: 0.28.0 does not (row 68: dense Qwen3-14B, KV = budget - weights - ~0.8 GiB), "
              "0.31.0 does (row 33); 0.29 is assumed.  MoE and hybrid models moved to MRV2 too (PR #53183), so "
              "one scale (1.48 x the MRV2 capture, itself 0.37 x the V1 graph model) serves every model kind; the GDN transient "
              "term is kept from 0.26 (not re-read for MRV2).  The 0.32.0 / 0.33.0 sdists size the KV cache the same way "
              "(``determine_available_memory``: 0.31.0 -> 0.32.0 only wraps the profile run in ``set_current_vllm_config``; "
              "0.33.0 also estimates encoder graphs with ``cudagraph_mm_encoder``, gpu_worker.py); 0.34 is the next profile",
        tokens_from_concurrency=True, capture_batched_tokens=True),
)

# 0.34: the KV cache is sized after warm-up and graph capture (the extensible KV cache, on by default on CUDA and ROCm)
_P034 = replace(
    PROFILES[-1], name="0.34", first=(0, 34), default_block_size=64, extensible_kv_cache=True,
    log_format="'Memory after warmup: F GiB free, C GiB committed to the KV cache, R GiB kept for transient "
               "activations (P GiB allocated at peak, G GiB of torch reservation growth); N KV cache blocks (S GiB) fit "
               "within the requested Q GiB' (v1/worker/extensible_kv_cache.py:693-707); the 'CUDA graph memory "
               "profiling' line only with --no-enable-extensible-kv-cache",
    commits=("vllm 0.34.0 sdist v1/worker/extensible_kv_cache.py:592-618 measure_kv_cache_bytes: KV = min(requested - "
             "non-KV used, free + committed - max(floor, 0.75 x T)) - max(T, torch reservation growth); "
             ":50-71 KV_CACHE_MARGIN_FLOOR_BYTES 1 GiB (3 GiB on ROCm), KV_CACHE_MARGIN_FRACTION 0.75; "
             "KV_CACHE_NON_TORCH_RESERVE_BYTES (:71) only caps torch's allocator after the sizing (:684-692); "
             ":677-681 reserve_mm_ipc_gpu_memory (multimodal/gpu_ipc_memory.py:155-267: --mm-ipc-gpu-memory-gb, "
             "default 0, plus GPU video decoders, default backend opencv: 0 at defaults)",
             "v1/worker/gpu_worker.py:1017-1114 (_compile_or_warm_up_model: sizing warm-up, transient peak recorded, "
             "graphs captured, then measure_kv_cache_blocks at :1226-1237); :945-948 T starts at the profile run's "
             "peak activation (peak_activation_memory, :771-774)",
             "v1/worker/gpu/model_runner.py:1121-1125 (profile_cudagraph_memory returns 0 with the extensible cache: "
             "the captured graphs are measured instead of estimated)",
             "config/cache.py:185 DEFAULT_BLOCK_SIZE 64, :494-500 resolved_gpu_memory_utilization (1.0 with the "
             "extensible cache, else 0.92), :395-406 enable_extensible_kv_cache; config/vllm.py:3180-3240 "
             "(_resolve_extensible_kv_cache: off with kv_cache_memory_bytes or num_gpu_blocks_override)",
             "platforms/interface.py:1078-1084 (hybrids: attention block aligned to max(the backend's smallest "
             "kernel block, block_size) = 64)"),
    evidence="no public start-up log of vLLM 0.32 - 0.34 with KV figures was found (search of vLLM issues / PRs / "
             "benchmark repositories for 'Memory after warmup' and 'Available KV cache memory' with 0.32-0.34, "
             "2026-12-04): the profile is the 0.29 one (terms inherited, nothing fitted) with the sizing rule of the "
             "0.34.0 source; its accuracy is unmeasured and docs/accuracy.md says so",
    notes="extensible KV cache (default): KV = min(util x total - (weights + non-torch + captured graphs + "
          "activation), total - start-up context - (weights + non-torch + graphs + activation) - max(floor, 0.75 x "
          "activation)), the floor 1 GiB on CUDA, 3 GiB on ROCm (AMD GPUs); unset --gpu-memory-utilization = 1.0; "
          "nothing is allocated after the sizing, so no "
          "out-of-memory-after-profiling verdict; block size 64.  --no-enable-extensible-kv-cache (or "
          "--kv-cache-memory-bytes) gives the 0.29 sizing with util 0.92")
# 0.11.1: the 16-step capture list above 256 (vllm 0.11.1 sdist config/vllm.py:807-812 ``_set_cudagraph_sizes``;
# 0.11.0 sdist config/__init__.py:590-599 still builds the step-8 list from SchedulerConfig.cuda_graph_sizes,
# config/scheduler.py:226-227).  Every other term is 0.11.0's.
_P0111 = replace(
    PROFILES[1], name="0.11.1", first=(0, 11, 1), capture_rule="max_num_seqs",
    commits=PROFILES[1].commits + ("vllm 0.11.1 sdist config/vllm.py:807-812 (the 16-step capture list)",),
    evidence="as 0.11 (terms inherited; rows 81 / 82 -- 0.15.0 / 0.16.0 of the llm-d-planner sweep -- and M01 / M02 / "
             "M06 run here); the 0.11.0 rows 73-80 and C05-C09 run under 0.11",
    notes="FULL_AND_PIECEWISE and max(capture) = min(2 x max_num_seqs, 512) with multiples of 16 above 256 from 0.11.1; "
          "graphs outside")
PROFILES = PROFILES[:2] + (_P0111,) + PROFILES[2:] + (_P034,)
DEFAULT_PROFILE = PROFILES[-1]


def next_profile(p: VllmProfile) -> VllmProfile | None:
    i = PROFILES.index(p)
    return PROFILES[i + 1] if i + 1 < len(PROFILES) else None


def parse_version(value) -> tuple[int, int, int] | None:
    """The vLLM release ``(major, minor, patch)`` a version as users write it is priced as; None when not a version.

    * "0.20" (major.minor only) is the .0 release, (0, 20, 0): what it meant before patches were kept.
    * "0.20.2", "v0.20.2" -> (0, 20, 2); a fourth number ("0.10.1.1", a post-release) is dropped.
    * A pre-release or development build of X.Y.Z ("0.20.1rc1", "0.20.1.dev1", "0.20.1rc1.dev91+ga749a33d8",
      "0.16.1rc1.dev265+gd106bf39f") is priced as X.Y.Z; a local label ("0.13.0+faa43dbf.nv26.01") is ignored.
      Why not before X.Y.Z, as PEP 440 orders them: vLLM's nightlies are built from main, where a fix lands before
      it is cherry-picked into the X.Y.Z release branch, and the evidence says so -- row 166 (the
      ``vllm/vllm-openai:nightly`` 0.20.1rc1.dev91) already prints the "GPU KV cache size" line that the 0.20.1 sdist
      has and the 0.20.0 sdist lacks (v1/core/kv_cache_utils.py:1706 vs :1694-1697); row 176 (0.19.1rc1.dev329)
      prints 0.19's block-multiple line, which every 0.19.x sdist has.  A dev build taken before the fix merged
      would be priced one patch late; no row shows one.

    The tuple compares with the (major, minor) boundaries the rest of the code writes ("from 0.28" = (0, 28)):
    (0, 27, 1) < (0, 28) <= (0, 28, 0).  Callers needing the line take ``[:2]``."""
    m = re.match(r"\s*v?(\d+)\.(\d+)(?:\.(\d+))?", str(value or ""))
    return (int(m[1]), int(m[2]), int(m[3] or 0)) if m else None


def release_of(version: tuple[int, ...]) -> tuple[int, int, int]:
    """A (major, minor) or (major, minor, patch) tuple as a full release: (0, 20) -> (0, 20, 0)."""
    return tuple(version[:3]) + (0,) * (3 - len(version[:3]))


# newest release line whose source or logs this table has read (the 0.34.0 sdist; row 33: vllm/vllm-openai:v0.31.0);
# any 0.34.x is taken as read
NEWEST_READ = (0, 34)


def profile_for(version) -> tuple[VllmProfile, str]:
    """The profile of a version string and a note ('' when the version is known).

    Versions before 0.10 are refused by the job parser; here they map to the oldest
    profile.  A version newer than the newest release read gets the newest profile and
    a note saying so."""
    v = parse_version(version)
    if v is None:
        return DEFAULT_PROFILE, f"vLLM version {version!r} not understood: used the newest profile {DEFAULT_PROFILE.label}"
    chosen = PROFILES[0]
    for p in PROFILES:
        if v >= release_of(p.first):
            chosen = p
    note = ""
    if v[:2] > NEWEST_READ:
        note = (f"vLLM {v[0]}.{v[1]} is newer than the newest release read ({NEWEST_READ[0]}.{NEWEST_READ[1]}): "
                f"estimated with the newest profile {chosen.label}")
    return chosen, note


# ``VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS`` is read from vLLM 0.18.0 (vllm 0.18.0 sdist envs.py:247, default off;
# gpu_worker.py:397-399 takes ``profile_cudagraph_memory()`` from the budget when it is on) to 0.34.0 (envs.py:344,
# :2355-2356 ``bool(int(os.getenv(..., "1")))``; gpu_worker.py:746); 0.17.0 has neither the variable nor the estimate
ESTIMATE_CUDAGRAPHS_FROM = (0, 18, 0)


def budget_graph_factor(p: VllmProfile, is_moe: bool, hybrid: bool, estimate: bool | None = None) -> float:
    """Share of the captured graph memory the profile takes from the KV budget (0 = none).

    ``estimate``: ``VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS`` as the deployment sets it (None: unset, the release's
    default ``graphs_in_budget``).  Off: no estimate is taken (vLLM skips ``profile_cudagraph_memory``) and the graphs
    are captured after the cache is sized, outside the budget.  On in a release whose default is off (0.18 / 0.19,
    the caller checks the release has the variable): the same ``profile_cudagraph_memory`` (PR #30515) the 0.20
    default took, so the first default-on profile's scale -- fitted on the estimates the v0.19 H100 rows print
    beside their captures.  Model Runner V2 models estimate 0 either way before 0.29 (``dense_graph_estimate``)."""
    on = p.graphs_in_budget if estimate is None else bool(estimate)
    if not on:
        return 0.0
    if not p.dense_graph_estimate and not is_moe and not hybrid:
        return 0.0
    if p.graphs_in_budget:
        return p.graph_estimate_scale
    return next(q for q in PROFILES if q.graphs_in_budget).graph_estimate_scale


def non_torch_gib(p: VllmProfile, tp: int, pp: int, dp: int, is_moe: bool, pp_only: float,
                  nvls: bool = True) -> float:
    """Non-torch memory of the profile: one GPU, a communication group, or PP only.  ``nvls`` False:
    a group on GPUs without NVLink SHARP gets the one-GPU figure plus the per-rank term, not the
    NVSwitch-fitted base (overheads.py, "non-torch")."""
    group = tp * (dp if is_moe else 1)
    if group > 1:
        return (p.nt_comm_base if nvls else p.nt_single) + p.nt_comm_per_rank * group
    return pp_only if pp > 1 else p.nt_single


__all__ = ["VllmProfile", "PROFILES", "DEFAULT_PROFILE", "profile_for", "parse_version", "release_of", "capture_sizes",
           "MODEL_MAX_CAPTURE", "OVERRIDE_CAPTURE", "model_max_capture",
           "graph_scale", "budget_graph_factor", "ESTIMATE_CUDAGRAPHS_FROM", "spec_rounded_sizes", "non_torch_gib",
           "NEWEST_READ",
           "MRV2_NAMED_ARCHS", "named_mrv2", "model_runs_mrv2",
           "next_profile", "REFERENCE_CAPTURE_SIZES", "MODEL_CAPTURE_OVERRIDE_FROM", "OVERRIDE_CAPTURE_0110", "runs_mrv2"]
