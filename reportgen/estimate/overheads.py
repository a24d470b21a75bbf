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

Memory outside the budget (allocated after profiling; must fit in ``(1 - util) x total``)::

    CONTEXT_GIB + G (only when the version does not subtract graphs) + SAMPLER_WARMUP * S_rows * V * 4

``SAMPLER_WARMUP`` = 2 (fp32 logits and one same-size buffer) is a physical choice,
not a fit: the logs contain no failed start, and the starts they do contain bound it
from above (gemma-2-9b at util 0.95 started, so it must be <= 2.43).
"""

from __future__ import annotations

GIB = float(1 << 30)

# ---- activation (fitted by scripts/calibrate_overheads.py) ----
ALPHA_MLP = 1.591          # x mlp_cols elements per token: gate_up output + activation output
BETA_HIDDEN = 4.088        # x h elements per token: residual, norms, attention in/out
HIDDEN_KEPT = 1.974        # hidden states + residual of the dummy batch alive in the sampler run
SAMPLER_BYTES = 12.302    # fp32 bytes per logit beyond the model-dtype logits
MOE_WS = 0.768             # fused-MoE intermediate caches, in units of T*topk*(3*I_e/moe_tp + h)
from .encoder import MM_ENCODER  # noqa: E402,F401  multimodal encoder profile: its own module and fit
PP_BUFFERS = 2.0         # pp > 1: hidden + residual IntermediateTensors of T tokens (not fitted: 2 tensors)

# ---- Gated DeltaNet prefill buffers (hybrids) ----
# The profile run's dummy batch is min(max_num_seqs, T) short requests; a GDN layer's chunked
# delta-rule prefill then holds state-sized buffers per request at once (gathered initial states,
# the per-chunk states h, fp32 final states, the write-back).  Peak = copies x requests x one
# layer's state bytes on the rank, on top of the forward peak.  Calibrated on ONE start-up
# (vllm_logs.csv row 71, Qwen3-Next-80B TP2, v0.10.2: 5.58 GiB logged, 2.46 modelled without it);
# not applied to Mamba / KDA / short-conv state kinds (no log to calibrate them; vLLM V1's profile
# run skips the Mamba scan, and the projection width it leaves unpriced is bounded in
# docs/accuracy.md, "Mamba families: no activation term").
GDN_STATE_COPIES = 9.76

# ---- non-torch ----
NT_SINGLE = 0.25
NT_PP_ONLY = 0.07
NT_COMM_BASE = 1.991
NT_COMM_PER_RANK = 0.041

# ---- CUDA graphs ----
G_BASE = 0.333
G_PER_LAYER = 0.0118
G_PER_LAYER_WIDTH = 0.0054
G_MOE = 0.560

# ---- outside the budget ----
CONTEXT_GIB = 0.5
SAMPLER_WARMUP = 2.0

# ---- vLLM version profiles: reportgen/estimate/profiles.py ----


def graphs_in_budget(version: str) -> bool:
    """True when the version's profile takes a CUDA-graph estimate from the KV budget (>= 0.21)."""
    from .profiles import profile_for
    return profile_for(version)[0].graphs_in_budget


def default_scheduler_limits(usable_memory_gib: float) -> tuple[int, int]:
    """vLLM's API-server defaults (engine/arg_utils.py): ``(max_num_batched_tokens, max_num_seqs)``.

    >= 70 GiB GPUs: 8192 / 1024; smaller: 2048 / 256.  (A100 and GB10 are treated as
    small by vLLM; the catalog's ``large_gpu`` flag carries that choice.)
    """
    return (8192, 1024) if usable_memory_gib >= 70 else (2048, 256)
