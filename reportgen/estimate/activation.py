"""The profile-run activation model: bytes per batched token / per sampler row of the forward pass, the sampler,
the MoE workspaces (Triton-fitted and vLLM's CUTLASS NVFP4 call), init-time buffers and the encoder / video
tower, and the scalar activation (GiB) they add up to.

Why a module of its own: ``tables.ModelTables`` stores these coefficients per layout row, the calibration
scripts and the seed API evaluate them directly, and ``activation_gib`` is the scalar twin of the polars
expressions in ``exprs.gpu_pass``; they read ``ModelFacts`` and the layout only.  Split out of ``tables.py``
unchanged; ``tables`` re-exports every name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reportgen.arch import mm_video

from . import encoder, hybrid, overheads as oh
from .layout import Layout
from .overheads import GIB

if TYPE_CHECKING:
    from .tables import ModelFacts


def activation_coeffs(f: ModelFacts, lay: Layout, act_b: float, p=oh, sampler_extra: float = 0.0,
                      mrv2: bool = False, gdn_copies: float | None = None,
                      mrv2_sampler_bytes: float | None = None) -> dict[str, float]:
    """Bytes per batched token / per sampler row (forms in overheads.py; ``p`` = constants,
    overridable by the calibration script; ``sampler_extra`` = the version profile's extra
    bytes per logit in the profile-run sampler, ``profiles.VllmProfile.sampler_extra_bytes``;
    ``mrv2``: the profile run samples with Model Runner V2's sampler, ``oh.MRV2_SAMPLER_BYTES``
    beyond the model-dtype logits instead of the fitted MRV1 ``SAMPLER_BYTES``; ``gdn_copies``: the
    version profile's ``gdn_state_copies``, None = ``p.GDN_STATE_COPIES``; ``mrv2_sampler_bytes``: the MRV2
    profile-run sampler's bytes a logit for the job's release, ``oh.mrv2_sampler_bytes`` -- 0 in vLLM 0.28-0.32, 12
    from 0.33 with the FlashInfer sampler -- None = ``oh.MRV2_SAMPLER_BYTES``)."""
    moe_tp = 1 if lay.ep else lay.tp * lay.dp
    mrv2_b = oh.MRV2_SAMPLER_BYTES if mrv2_sampler_bytes is None else mrv2_sampler_bytes
    smp_b = mrv2_b if mrv2 else p.SAMPLER_BYTES + sampler_extra
    moe_ws = p.MOE_WS * f.moe_topk * (f.moe_cols3 / moe_tp + f.hidden) * act_b if f.is_moe else 0.0
    return {
        "a_fwd_t": act_b * (p.ALPHA_MLP * f.mlp_cols / lay.tp + p.BETA_HIDDEN * f.hidden
                            + hybrid.mixer_excess_cols(f.ssm_state, p.ALPHA_MLP * f.mlp_cols / lay.tp, lay.tp)),
        "a_hid_t": p.HIDDEN_KEPT * f.hidden * act_b,
        "a_smp_r": f.vocab * (act_b + smp_b),
        "a_add_t": moe_ws
                   + encoder.deepstack_bytes_per_token(f.multimodal, f.hidden, act_b, f.deepstack)
                   + f.buffer_t * act_b
                   + topk_buffer_bytes_per_token(f.topk_buf, lay.tp)
                   + (oh.PP_BUFFERS * f.hidden * act_b if lay.pp > 1 else 0.0),
        # encoder profile: bytes per encoder-budget token, and the largest item (budget = max(T, item))
        "a_enc_t": encoder.encoder_bytes_per_token(f.multimodal, f.hidden, act_b),
        "enc_item": float(f.mm_item),
        # per max_model_len (exprs.encoder_lens): the dummy video's patch tokens / most patches, and the tower's
        # own peak in bytes per encoded token
        "vid_f": float(f.video[0]),
        "vid_p": float(f.video[1]),
        "vid_s": float(f.video[2]),
        "tow_t": encoder.tower_bytes_per_token(f.multimodal, f.tower, lay.tp, act_b),
        "tow_in": encoder.tower_input_bytes_per_token(f.multimodal, f.tower),
        # the sampler warm-up after the KV cache runs the same runner's _dummy_sampler_run: MRV2's holds the
        # logits and one fp32 copy (no top-k/top-p leftovers to strand), MRV1's the fitted live + stranded set
        "warm_r": (f.vocab * (act_b + oh.MRV2_SAMPLER_BYTES) if mrv2
                   else (oh.SAMPLER_WARMUP + act_b / 4.0) * f.vocab * 4.0),
        "a_state_r": ((getattr(p, "GDN_STATE_COPIES", oh.GDN_STATE_COPIES) if gdn_copies is None else gdn_copies)
                      * f.gdn_state.bytes_per_seq(lay.tp, act_b) if f.gdn_state is not None else 0.0),
        # the fused-MoE workspaces' share of ``a_add_t``: since vLLM 0.14 the modular kernel takes them from the
        # shared ``WorkspaceManager`` buffer that DeepSeek-V4's attention workspaces also use (exprs._ws_rows)
        "a_moe_t": moe_ws,
    }


def cutlass_nvfp4_moe_coeffs(f: ModelFacts, lay: Layout, act_b: float, p=oh) -> tuple[float, float]:
    """(MoE-step peak, kept workspaces), bytes per batched token, of vLLM's CUTLASS NVFP4 MoE call
    (vllm/model_executor/layers/fused_moe/cutlass_moe.py @d5fdedb1, ``run_cutlass_moe_fp4`` /
    ``CutlassExpertsFp4``; docs/decisions.md "Row 170's 2.45 GiB").  K = hidden, N = the rank's expert width,
    a = ``act_b``:

    - the step: the residual stream (``BETA_HIDDEN`` h) plus the call's transients at its last step -- the
      input rows copied into expert order (``ops.shuffle_rows(a, a_map)``, (m topk, K)), the output rows copied
      back (``shuffle_rows(c3, c_map)``, (m topk, K)), the weighted product ``c3.view(m, topk, K) *
      topk_weights`` ((m topk, K)) and its ``.sum(dim=1)`` ((m, K)): a (BETA_HIDDEN h + (3 topk + 1) K).  They
      are freed when the call returns, so the step is a peak of its own beside the dense forward F: the
      activation takes max(F, step) (``_coeff_tuple`` folds it into ``a_fwd_t``).  K is not divided by tp:
      the shuffled rows are full hidden width.
    - the kept workspaces (``workspace_shapes``): (m topk, max(2N, K)) + (m topk, N) + the output (m, K),
      replacing the Triton-fitted ``MOE_WS`` term ``a_moe_t``."""
    if not f.is_moe:
        return 0.0, 0.0
    moe_tp = 1 if lay.ep else lay.tp * lay.dp
    n = f.moe_cols3 / 3.0 / moe_tp
    k, topk = f.hidden, f.moe_topk
    step = act_b * (p.BETA_HIDDEN * k + (3 * topk + 1) * k)
    ws = act_b * (topk * (max(2 * n, k) + n) + k)
    return step, ws


def topk_buffer_bytes_per_token(heads_topk: tuple[int, int], tp: int) -> float:
    """int32 bytes per batched token of MiniMax-M3's ``topk_indices_buffer`` on one rank:
    ``torch.empty(max(1, sparse_num_index_heads // tp), padded tokens, sparse_topk_blocks, dtype=int32)``
    in ``MiniMaxM3Model.__init__`` (vllm/models/minimax_m3/nvidia/model.py @0443308a), allocated with the
    model, so it is in vLLM's non-KV memory.  The padding of max_num_batched_tokens up to a multiple of 4
    (at most 3 rows: 768 bytes for MiniMax-M3) is not counted."""
    heads, topk = heads_topk
    return float(max(1, heads // tp) * topk * 4) if heads and topk else 0.0


def activation_gib(c: dict[str, float], batched_tokens: int, max_num_seqs: int, last_stage: bool,
                   max_model_len: int | None = None) -> float:
    """Scalar twin of the polars expressions in ``exprs.gpu_pass`` (calibration, seed API) and, given
    ``max_model_len``, ``exprs.encoder_lens`` (the dummy video and the tower's own peak)."""
    t, r = float(batched_tokens), float(min(max_num_seqs, batched_tokens))
    fwd = t * c["a_fwd_t"] + r * c.get("a_state_r", 0.0)
    core = max(fwd, t * c["a_hid_t"] + r * c["a_smp_r"]) if last_stage else fwd
    video = 0
    if max_model_len is not None:
        video = mm_video.video_patches(max_model_len, int(c.get("vid_f", 0)), int(c.get("vid_p", 0)),
                                      int(c.get("vid_s", 0))) * int(c.get("vid_f", 0))
    budget, encoded = encoder.encoder_profile_tokens(batched_tokens, int(c.get("enc_item", 0)), video)
    text = core + t * c["a_add_t"] + budget * c.get("a_enc_t", 0.0)
    if max_model_len is None or not c.get("tow_t", 0.0):
        return text / GIB
    # the tower phase and the text phase of profile_run (encoder.profile_peak)
    return encoder.profile_peak(text + encoded * c.get("tow_in", 0.0), t * c["a_add_t"], encoded * c["tow_t"]) / GIB
