"""Per-model precompute: one row per (layout, weight dtype, KV dtype) with stage "slots".

Why slots: the matrix must be polars expressions over millions of cells, but
the worst rank is a max/min over pipeline stages.  Stages of one layout differ
only by a handful of numbers (weights, bytes per KV block, layers, whether it
runs the sampler), so each layout row carries up to ``K`` *distinct* stage
profiles side by side (``w0..wK``, ``bpb0..bpbK`` ...; first stage first, last
stage last).  The per-cell code then takes ``min_horizontal`` across slots --
no group-by, no Python per cell.

Everything that does not depend on the GPU or the cell axes (weights per stage,
KV groups and pages, activation coefficients, non-torch, CUDA graphs, the
model-level validity rules) is computed here once per layout.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from reportgen.arch import mm_video
from reportgen.arch.spec import Component, ModelSpec, Shard
from reportgen.arch.state import first_state_tp_rule

from . import encoder, hybrid, overheads as oh
from . import profiles as vp
from . import specdecode as sdm
from .compressed import InvalidKvDtype
from .kvcache import KvScan, UnsupportedKvDtype, kv_element_bytes, kv_groups
from .layout import Layout, pp_partition, rank_label
from .quant import kv_cache_dtype_used
from .quant.checkpoint import mxfp4_moe_experts
from .quant.layouts import NVFP4_MOE_BACKENDS
from .served import release_values
from .weights import (AllocatorPlan, TensorPlan, allocator_unsplit_bytes, build_weight_table, scheme_rules,
                      stage_weights)

GIB = float(1 << 30)
PLAIN_ACT = {"fp32": 4, "float32": 4, "bf16": 2, "bfloat16": 2, "fp16": 2, "float16": 2}


@dataclass(frozen=True, slots=True)
class ModelFacts:
    """Dimensions the overhead model needs, read off the tensor list (exact, family-agnostic)."""

    hidden: int
    vocab: int
    mlp_cols: float       # dense (or shared-expert) MLP column-parallel width, unsharded (gate+up = 2I)
    moe_topk: int
    moe_cols3: float      # 3 x expert intermediate (gate, up, down), unsharded
    is_moe: bool
    multimodal: bool
    gdn_state: object = None   # the largest Gated DeltaNet state geometry (prefill buffers), None without
    chunk_state: object = None  # the GDN / KDA geometry with the largest FLA chunk-scan set (0.26+ transient)
    deepstack: int = 0         # Qwen3-VL deepstack levels (encoder.py)
    mm_item: int = 0           # encoder tokens of the largest multimodal item (0 = unknown; encoder.encoder_budget)
    buffer_t: int = 0          # elements per batched token of init-time buffers (ModelSpec.init_buffer_per_token)
    topk_buf: tuple[int, int] = (0, 0)   # (index heads, top-k) of an int32 init-time buffer (ModelSpec.index_topk_buffer)
    ssm_state: object = None   # the widest Mamba-1 / Mamba-2 mixer geometry: its width beyond the MLP's is priced
    video: tuple[int, int, int] = (0, 0, 0)   # (tokens per step, most steps, tokens taken off) of a max_model_len-sized video
    tower: object = None       # mm_video.TowerPeak: the ViT's own profile peak per patch (None: not modelled)


def model_facts(spec: ModelSpec) -> ModelFacts:
    h = max(spec.hidden_size, 1)
    mlp: dict[int, float] = {}
    exp: dict[int, float] = {}
    for t in spec.tensors:
        if t.layer is None:
            continue
        if t.component in (Component.DENSE_MLP, Component.SHARED_EXPERTS) and t.shard is Shard.COLUMN \
                and len(t.shape) == 2:
            mlp[t.layer] = mlp.get(t.layer, 0) + t.numel / h
        elif t.component is Component.ROUTED_EXPERTS and len(t.shape) >= 2:
            exp[t.layer] = exp.get(t.layer, 0) + t.numel
    e = max(spec.num_experts, 1)
    moe_cols3 = (max(exp.values()) / (e * h)) if exp else 0.0
    gdn = [l.state for l in spec.layers_kv if l.state is not None and l.state.kind == "gdn"]
    gdn_state = max(gdn, key=lambda s: s.bytes_per_seq(1, 2)) if gdn else None
    chunk = [l.state for l in spec.layers_kv if l.state is not None and l.state.kind in ("gdn", "kda")]
    chunk_state = max(chunk, key=lambda s: oh.gdn_transient_bytes_per_token(s, 1, 2)) if chunk else None
    return ModelFacts(h, spec.vocab_size, max(mlp.values(), default=0.0), spec.experts_per_token,
                      moe_cols3, bool(spec.num_experts and exp), spec.multimodal, gdn_state,
                      chunk_state, encoder.deepstack_levels(spec), spec.mm_item_tokens if spec.multimodal else 0,
                      spec.init_buffer_per_token, tuple(spec.index_topk_buffer),
                      hybrid.widest_mixer_state(spec.layers_kv),
                      (spec.mm_video_patch_tokens, spec.mm_video_max_patches, spec.mm_video_minus_tokens)
                      if spec.multimodal else (0, 0, 0),
                      spec.mm_tower_peak if spec.multimodal else None)


_DTYPE_NAME = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def serving_dtype(spec: ModelSpec, weights_as: str, dtype: str = "auto") -> str:
    """The dtype vLLM computes in: ``dtype`` (vLLM ``--dtype``) when it is not ``auto``; else a plain
    what-if ``weights_as`` (bf16 / fp16 / fp32: "as if shipped in that dtype"); else the checkpoint's,
    except that float32 checkpoints are served in 16-bit (vLLM's auto-dtype rule: bfloat16 for
    Gemma-2/3 and most models on Ampere+; the log of google/gemma-2-9b-it, a float32 config, shows
    bf16 weights)."""
    d = _DTYPE_NAME.get(str(dtype).lower(), None) if dtype else None
    if d is None and str(dtype).lower() in ("bfloat16", "float16", "float32"):
        d = str(dtype).lower()
    if d is not None:
        return d
    key = weights_as.lower()
    if key in PLAIN_ACT:
        return {4: "float32"}.get(PLAIN_ACT[key], "float16" if "f16" in key or key == "float16" else "bfloat16")
    s = spec.dtype.lower()
    if PLAIN_ACT.get(s, 2) == 4 and key in ("checkpoint", "auto"):
        return "bfloat16"
    return s


def act_bytes_for(weights_as: str, spec_or_dtype, dtype: str = "auto") -> int:
    """Activation/serving dtype bytes (see ``serving_dtype``)."""
    if isinstance(spec_or_dtype, str):
        key = (_DTYPE_NAME.get(str(dtype).lower(), "") if dtype and dtype != "auto" else "") or weights_as.lower()
        return PLAIN_ACT[key] if key in PLAIN_ACT else PLAIN_ACT.get(spec_or_dtype.lower(), 2)
    return PLAIN_ACT.get(serving_dtype(spec_or_dtype, weights_as, dtype), 2)


def scheme_for(spec: ModelSpec, weights_as: str, dtype: str = "auto", quantization: str | None = None,
               mxfp4_backend: str | None = None):
    """The storage scheme costed for one ``weights_as`` value under the engine's ``--dtype`` and
    ``--quantization`` (the quant package owns the bytes).

    - ``weights_as`` checkpoint: the checkpoint as vLLM loads it.  A pre-quantized checkpoint keeps
      its quantized tensors whatever ``dtype`` says (``dtype`` only sets the unquantized tensors:
      embeddings, norms, lm_head); ``quantization`` must then be the checkpoint's own method.  An
      unquantized checkpoint is stored at the serving dtype, or quantized at load by an online
      ``quantization`` (fp8).
    - any other ``weights_as``: the what-if re-quantization of the model (never combined with
      ``quantization``).

    ``mxfp4_backend``: the MXFP4 MoE backend whose expert layout an MXFP4 checkpoint is priced in
    (``mxfp4_backend_for`` of the GPU; None = ``layouts.DEFAULT_MXFP4_BACKEND``, Triton).
    """
    from dataclasses import replace

    from . import quant
    from .quant.online import check_checkpoint_method, online_scheme

    serve = serving_dtype(spec, weights_as, dtype)
    key = weights_as.lower()
    if key not in ("checkpoint", "auto"):
        if quantization:
            raise quant.UnsupportedQuantization(
                f"weights_as {weights_as} is a what-if re-quantization; it cannot be combined with "
                f"--quantization {quantization}")
        if key in PLAIN_ACT:
            return quant.whatif_scheme(serve)
        return quant.whatif_scheme(key, serve)
    qc = spec.quantization_config
    if quantization and not qc:
        return online_scheme(quantization, serve)
    named = getattr(spec, "quantization_by_name", None)
    if not qc and named and not getattr(spec, "checkpoint_tensors", None):
        raise quant.UnsupportedQuantization(
            f"the model id says {named} but the config carries no quantization layout (no quantization_config "
            f"in config.json, no hf_quant_config.json beside it): which layers are quantized is unknown, and "
            f"pricing them all at {spec.dtype} would overstate the weights up to 3-4x; put the checkpoint's "
            f"ModelOpt hf_quant_config.json beside its config.json, read its safetensors headers (--weights "
            f"checkpoint, online) or ask a what-if weight dtype (--weights-as fp8 / int4 / ..., job weights_as)")
    if quantization:
        check_checkpoint_method(qc, quantization)
    if not qc and PLAIN_ACT.get(spec.dtype.lower(), 2) != PLAIN_ACT.get(serve, 2):
        return quant.whatif_scheme(serve, spec.dtype)        # vLLM casts the weights to the serving dtype
    scheme = quant.checkpoint_scheme(spec, mxfp4_backend or mxfp4_backend_for(spec, None))
    if qc and isinstance(scheme, quant.Scheme) and scheme.model_dtype_bytes != PLAIN_ACT.get(serve, 2):
        scheme = replace(scheme, model_dtype_bytes=PLAIN_ACT.get(serve, 2))   # unquantized tensors only
    return scheme


def mxfp4_backend_for(spec: ModelSpec, mxfp4_gpu: tuple | None) -> str:
    """The MXFP4 MoE backend vLLM picks for ``spec``'s experts on ``mxfp4_gpu`` = (compute capability,
    vLLM (major, minor)) of one GPU (``quant.layouts.mxfp4_moe_backend``, ``matrix.mxfp4_gpus``); None or
    a capability of None (a GPU given by its memory only, AMD, TPU, a catalog row without the column): the
    H100 (Triton) default.  DeepSeek-V4's experts (``expert_dtype`` fp4) are W4A8 (fp8 activations)."""
    from .quant.layouts import DEFAULT_MXFP4_BACKEND, mxfp4_moe_backend

    if mxfp4_gpu is None:
        return DEFAULT_MXFP4_BACKEND
    cc, version = mxfp4_gpu
    w4a8 = (spec.quantization_config or {}).get("expert_dtype") == "fp4"
    return mxfp4_moe_backend(cc, version, w4a8)


# MoE model types whose routed experts use a gated activation other than SiLU (vLLM ``MoEActivation``): FlashInfer's
# CUTLASS MoE does not take it, so vLLM's auto NVFP4 choice passes to its own CUTLASS kernel there
# (layouts.nvfp4_moe_backend); gemma4: ``Gemma4MLP`` / its MoE accept gelu_pytorch_tanh only (families/gemma4.py)
GATED_MOE_ACTIVATIONS = {"gemma4": "gelu_tanh"}


def moe_activation(spec: ModelSpec) -> str:
    """vLLM's ``MoEActivation`` name of the routed experts: relu2_no_mul when the experts have an up projection
    and no gate (nemotron_h's relu2, non-gated), else the model type's gated activation (SiLU by default)."""
    names = {t.name.rsplit(".", 2)[-2] for t in spec.tensors if t.component is Component.ROUTED_EXPERTS}
    if names and not any("gate" in n or n in ("w13", "w1", "w3") for n in names):
        return "relu2_no_mul"
    return GATED_MOE_ACTIVATIONS.get(getattr(spec, "model_type", None) or "", "silu")


def nvfp4_backend_for(spec: ModelSpec, gpu: tuple | None, moe_backend: str = "auto", w4a16: bool = False
                      ) -> str | None:
    """The NVFP4 MoE backend (``quant.layouts.NVFP4_MOE_BACKENDS`` key) vLLM runs ``spec``'s NVFP4 experts with
    on ``gpu`` = (compute capability, vLLM (major, minor)): the user's ``--moe-backend`` when it names one,
    else vLLM's auto choice for the GPU (``layouts.nvfp4_moe_backend``); None = not known (no capability,
    a version not read): the checkpoint's bytes and the fitted terms."""
    from .quant.layouts import NVFP4_BACKEND_OF_FLAG, nvfp4_moe_backend

    if moe_backend != "auto":
        return NVFP4_BACKEND_OF_FLAG.get(moe_backend)
    if gpu is None:
        return None
    cc, version = gpu
    return nvfp4_moe_backend(cc, version, moe_activation(spec), w4a16)


def moe_backend_refusal_for(spec: ModelSpec, gpu: tuple | None, moe_backend: str, nvfp4=None, mxfp4: bool = False
                            ) -> str | None:
    """vLLM's refusal of the user's explicit ``--moe-backend`` for ``spec``'s routed experts as shipped on ``gpu`` =
    (compute capability, vLLM (major, minor)) (``quant.layouts.moe_backend_refusal``): ``nvfp4`` = the experts' NVFP4
    layout (``experts_nvfp4``) or None, ``mxfp4``: the experts are MXFP4 (gpt-oss; DeepSeek-V4's W4A8 experts take
    another path, not decided).  None = vLLM starts, or not decidable (no capability: AMD, a GPU given by its
    memory)."""
    from .quant.layouts import moe_backend_refusal

    if moe_backend == "auto" or gpu is None or gpu[0] is None:
        return None
    cc, version = gpu
    if mxfp4:
        if (spec.quantization_config or {}).get("expert_dtype") == "fp4":
            return None
        return moe_backend_refusal(moe_backend, "mxfp4", cc, version)
    if nvfp4 is not None:
        return moe_backend_refusal(moe_backend, "nvfp4", cc, version, moe_activation(spec), not nvfp4.input_scale)
    return None


def rule_inputs(spec: ModelSpec) -> tuple[tuple[int, ...], tuple]:
    """What ``model_rule`` reads off the layers: (KV head counts, main first; distinct state geometries)."""
    heads = (spec.num_kv_heads, *sorted(set(getattr(spec, "kv_heads_by_layer", ())) - {spec.num_kv_heads}))
    return heads, tuple(dict.fromkeys(l.state for l in spec.layers_kv if l.state is not None))


def model_rule(spec: ModelSpec, lay: Layout, inputs: tuple | None = None) -> str | None:
    """PRODUCT §3 validity rules that depend on the model only (first broken rule, named); ``inputs``:
    ``rule_inputs(spec)`` kept across layouts."""
    if spec.num_attention_heads and spec.num_attention_heads % lay.tp:
        return f"num_attention_heads ({spec.num_attention_heads}) % tp ({lay.tp}) != 0"
    heads, geoms = inputs if inputs is not None else rule_inputs(spec)
    for n_kv in heads:
        if not spec.is_mla and n_kv and n_kv % lay.tp and lay.tp % n_kv:
            what = "num_key_value_heads" if n_kv == spec.num_kv_heads else "KV heads of some layers"
            return f"{what} ({n_kv}) and tp ({lay.tp}): neither divides the other"
    rule = first_state_tp_rule(geoms, lay.tp)
    if rule:
        return rule
    if spec.max_tp and lay.tp > spec.max_tp:
        return f"tp ({lay.tp}) > num_experts ({spec.max_tp}): vLLM's MoE block raises"
    cap = getattr(spec, "tp_invalid", None)
    if cap and lay.tp > cap[0]:
        return f"tp ({lay.tp}) > " + cap[1].format(tp=lay.tp, width=lay.tp * cap[2], share=cap[2] // lay.tp)
    if lay.pp > spec.num_layers:
        return f"pp ({lay.pp}) > num_hidden_layers ({spec.num_layers})"
    if lay.pp > 1 and getattr(spec, "pp_invalid", None):
        return spec.pp_invalid
    if lay.pp > 1 and getattr(spec, "kv_sharing", ()):
        stage = [s for s, (a, b) in enumerate(pp_partition(spec.num_layers, lay.pp)) for _ in range(a, b)]
        for layer, target in spec.kv_sharing:
            if stage[layer] != stage[target]:
                return (f"layer {layer} shares the KV cache of layer {target} on another pipeline stage "
                        f"(pp {lay.pp}): vLLM's validate_kv_sharing_target raises")
    if lay.ep and not spec.num_experts:
        return "expert parallel needs a MoE model"
    if lay.ep and lay.tp * lay.dp > spec.num_experts:
        return f"expert parallel: tp*dp ({lay.tp * lay.dp}) > num_experts ({spec.num_experts})"
    return None


def non_torch_gib(lay: Layout, is_moe: bool, profile: vp.VllmProfile | None = None, nvls: bool = True) -> float:
    """Non-torch memory of one rank; ``profile`` None = the 0.19 fit in overheads.py; ``nvls`` False =
    GPUs without NVLink SHARP (overheads.comm_terms)."""
    if profile is not None:
        return vp.non_torch_gib(profile, lay.tp, lay.pp, lay.dp, is_moe, oh.NT_PP_ONLY, nvls)
    group = lay.tp * (lay.dp if is_moe else 1)
    if group > 1:
        return (oh.NT_COMM_BASE if nvls else oh.NT_SINGLE) + oh.NT_COMM_PER_RANK * group
    return oh.NT_PP_ONLY if lay.pp > 1 else oh.NT_SINGLE


def custom_ar_gib(lay: Layout, disabled: bool = False, nvlink_group: int = 1 << 20) -> float:
    """vLLM's custom all-reduce buffers on a rank (overheads.CUSTOM_AR_GIB): built for a TP group of
    2, 4, 6 or 8 unless ``--disable-custom-all-reduce``, and above TP 2 only on GPUs all NVLink-linked
    (``nvlink_group``: overheads.comm_terms)."""
    on = (not disabled and lay.tp in oh.CUSTOM_AR_SIZES and (lay.tp == 2 or lay.tp <= nvlink_group))
    return oh.CUSTOM_AR_GIB if on else 0.0


def context_gib(lay: Layout, is_moe: bool, custom_ar_disabled: bool = False) -> float:
    """Memory a rank holds when vLLM takes its start-up snapshot (CUDA context; with a communication
    group also NCCL / custom all-reduce set-up): outside the budget (overheads.CONTEXT_GIB).  The
    fitted CONTEXT_COMM_GIB holds the custom all-reduce buffers (H100 TP 2 / 4); a TP group without
    them (the flag, or a TP size vLLM does not build it for) holds that much less.  The GPU's part of
    the rule (TP > 2 on GPUs not all NVLink-linked) is applied per GPU (exprs.gpu_pass, ``ca``)."""
    if lay.tp * (lay.dp if is_moe else 1) == 1:
        return oh.CONTEXT_GIB
    return oh.CONTEXT_COMM_GIB - oh.CUSTOM_AR_GIB + custom_ar_gib(lay, custom_ar_disabled)


def graph_gib(layers_on_stage: int, tp: int, hidden: int, is_moe: bool, cuda_graphs: bool = True) -> float:
    """CUDA-graph memory of one stage (form and constants in overheads.py); 0 when the engine
    captures no graphs (vLLM ``--enforce-eager``: ``compile_or_warm_up_model`` skips
    ``capture_model``)."""
    if not cuda_graphs:
        return 0.0
    return (oh.G_BASE + layers_on_stage * (oh.G_PER_LAYER + oh.G_PER_LAYER_WIDTH * hidden / 4096 / tp)
            + (oh.G_MOE if is_moe else 0.0))


def activation_coeffs(f: ModelFacts, lay: Layout, act_b: float, p=oh, sampler_extra: float = 0.0,
                      mrv2: bool = False, gdn_copies: float | None = None) -> dict[str, float]:
    """Bytes per batched token / per sampler row (forms in overheads.py; ``p`` = constants,
    overridable by the calibration script; ``sampler_extra`` = the version profile's extra
    bytes per logit in the profile-run sampler, ``profiles.VllmProfile.sampler_extra_bytes``;
    ``mrv2``: the profile run samples with Model Runner V2's sampler, ``oh.MRV2_SAMPLER_BYTES``
    beyond the model-dtype logits instead of the fitted MRV1 ``SAMPLER_BYTES``; ``gdn_copies``: the
    version profile's ``gdn_state_copies``, None = ``p.GDN_STATE_COPIES``)."""
    moe_tp = 1 if lay.ep else lay.tp * lay.dp
    smp_b = oh.MRV2_SAMPLER_BYTES if mrv2 else p.SAMPLER_BYTES + sampler_extra
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


# vLLM's own CUTLASS MoE kernel on NVFP4 experts (``CutlassExpertsFp4``, the log's "Using 'VLLM_CUTLASS' NvFp4 MoE
# backend"): ``--moe-backend cutlass`` (``KernelConfig.moe_backend``, vllm/config/kernel.py @00634b8a) or vLLM's
# auto choice where FlashInfer's kernels do not take the experts (``nvfp4_backend_for``)
CUTLASS_NVFP4_BACKEND = "nvfp4_cutlass"
NVFP4_BACKEND_NAMES = frozenset(NVFP4_MOE_BACKENDS)


def experts_nvfp4(spec: ModelSpec, scheme):
    """The NVFP4 layout ``scheme`` (weights as shipped: origin checkpoint) stores the routed experts in, or None."""
    from .quant.layouts import Nvfp4
    if scheme is None or getattr(scheme, "origin", "") != "checkpoint":
        return None
    return next((lay for t in spec.tensors if t.component is Component.ROUTED_EXPERTS and len(t.shape) >= 2
                 and isinstance(lay := scheme.layout_for(t), Nvfp4)), None)


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


def state_kinds(spec: ModelSpec) -> tuple[bool, bool]:
    """(hybrid: any recurrent-state layer, gdn: any Gated-DeltaNet / KDA state layer)."""
    kinds = {getattr(getattr(l, "state", None), "kind", None) for l in getattr(spec, "layers_kv", ())}
    kinds.discard(None)
    return bool(kinds), bool(kinds & {"gdn", "kda"})


GROUP_FIELDS = ("n_groups", "n_full", "bs_full", "n_slide", "window", "bs_slide", "n_chunk", "chunk",
                "bs_chunk", "token_block", "n_state", "state_blocks",
                # DeepSeek-V4 (kvcache.KvGroups): two more sliding kinds, tokens = concurrency x M, workspace
                "n_slide2", "window2", "bs_slide2", "n_slide3", "window3", "bs_slide3", "tok_conc", "ws_b", "ws_w",
                "ix_d", "ws_fi", "cw0", "cw1", "cw2", "cw3",
                # DSA (DeepSeek-V3.2 / GLM-5): the indexer K gather's index_head_dim (``dsa_indexer_workspace``),
                # FlashMLA-sparse's kept q-concat buffer, bytes per batched token (``flashmla_sparse_q_concat``)
                "dsa_ix", "fm_qc", "fm_h",
                # vLLM 0.33+ Qwen GDN FlashInfer prefill checkpoints: the float32 buffer's row bytes (kvcache.KvGroups)
                "ck_b")
# per stage slot: weights, bytes per block, graphs, last stage?, rank label, KV bytes per token,
# state bytes per sequence, the compress ratio sizing DeepSeek-V4's prefill workspace (0: none / N = 0)
SLOT_FIELDS = ("w", "bpb", "g", "last", "label", "tokb", "stb", "wsr")
COEFF_FIELDS = ("a_fwd_t", "a_hid_t", "a_smp_r", "a_add_t", "a_moe_t", "a_enc_t", "enc_item", "warm_r", "a_state_r",
                "vid_f", "vid_p", "vid_s", "tow_t", "tow_in")
# one layout row = HEAD + BODY + K slots of SLOT_FIELDS (see ModelTables.row)
HEAD_FIELDS = ("tp", "pp", "dp", "ep", "weights_as", "kv_cache_dtype", "pre_status", "pre_reason")
# g_bf: share of the captured graph memory the version takes from the budget; gdn_t: bytes per
# batched token of the GDN chunk-scan transient the 0.26+ graph estimate holds (overheads.py; the
# estimate is max(graph, transient), exprs.gpu_pass)
# ctx: memory in use before the budget is measured (outside it); nt_nvls: the NVLink-SHARP share of nt
# (GPUs without it drop it); ca: the custom all-reduce buffers in ctx that GPUs not all NVLink-linked drop
# (TP > 2); g_big: 1 when the model raises vLLM's maximum capture size (profiles.MODEL_MAX_CAPTURE)
# spec_decode: the speculative method and draft priced (text); draft_w: draft weights on the last stage, GiB
BODY_FIELDS = ("weight_scheme", "kv_cache_dtype_used", "kv_note", "nt", "ctx", "nt_nvls", "ca", "g_max", "g_big",
               "g_bf", "gdn_t",
               *COEFF_FIELDS, *GROUP_FIELDS, "spec_decode", "draft_w")
_EMPTY_BODY = (None,) * len(BODY_FIELDS)
_NO_BODY = (None, _EMPTY_BODY, (), 0)      # ModelTables.row_parts of a row refused before its body


@dataclass(frozen=True)
class EngineOptions:
    """The one-value vLLM engine flags that change a model's layout rows (``Matrix`` fields of the
    same names): ``dtype`` (vLLM ``--dtype``), ``quantization`` (``--quantization``),
    ``enforce_eager`` (``--enforce-eager``: no CUDA graphs, so ``graph_gib`` is 0) and
    ``enable_prefix_caching`` (None = vLLM's default; carried for the hybrid-state code, where
    prefix caching selects Mamba's "align" cache mode; attention-only KV does not depend on it)."""

    dtype: str = "auto"
    quantization: str | None = None
    enforce_eager: bool = False
    enable_prefix_caching: bool | None = None
    flashinfer_sampler: bool | None = None     # VLLM_USE_FLASHINFER_SAMPLER (Matrix.flashinfer_sampler)
    # --speculative-config (specdecode.SpecDecode) and, for method draft_model, the draft's resolved spec
    spec_decode: object = None
    draft_spec: object = None
    # --attention-config indexer_kv_dtype (MiniMax-M3's index cache; vLLM default bf16)
    indexer_kv_dtype: str = "bf16"
    disable_custom_all_reduce: bool = False    # --disable-custom-all-reduce (overheads.CUSTOM_AR_GIB)
    # --moe-backend (vllm_args.MOE_BACKENDS): "cutlass" on NVFP4 experts prices the CUTLASS MoE step
    # (cutlass_nvfp4_moe_coeffs); any other value keeps the Triton-fitted terms
    moe_backend: str = "auto"
    # --max-model-len when the job has one value (None: several, or vLLM's default): the rotary caches a model
    # sizes by it (spec.rope_length_mode; weights.rotary_cache_bytes) follow it -- matrix/cells.py evaluates such a
    # model one length at a time
    max_model_len: int | None = None
    # the job's vLLM release (major, minor, patch) (``profiles.parse_version`` of ``Matrix.vllm_version``: "0.20" is
    # (0, 20, 0); None: not given or not understood -- the profile's first release stands in): for boundaries that do
    # not fall on a profile's first release (``compressed.DSA_INDEXER_WORKSPACE_FROM``, the NVFP4 MoE backend's 0.15.1)
    vllm_version: tuple[int, int, int] | None = None
    # PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True: the caching allocator splits every block, so the weights'
    # unsplit 2 MiB-rounded blocks (weights.allocator_unsplit_bytes) are not held.  Read off the Matrix instance
    # (an attribute set by the caller, as scripts/validate_vllm_logs.py does for row 170; no job key yet)
    expandable_segments: bool = False

    @classmethod
    def from_matrix(cls, m) -> "EngineOptions":
        return cls(getattr(m, "dtype", "auto") or "auto", getattr(m, "quantization", None),
                   bool(getattr(m, "enforce_eager", False)), getattr(m, "enable_prefix_caching", None),
                   getattr(m, "flashinfer_sampler", None),
                   sdm.parse_speculative_config(getattr(m, "speculative_config", None)),
                   _draft_for_release(getattr(m, "draft_spec", None), getattr(m, "vllm_version", None)),
                   getattr(m, "indexer_kv_dtype", None) or "bf16",
                   disable_custom_all_reduce=bool(getattr(m, "disable_custom_all_reduce", False)),
                   moe_backend=getattr(m, "moe_backend", None) or "auto",
                   max_model_len=_one_length(getattr(m, "max_model_len", None)),
                   vllm_version=vp.parse_version(getattr(m, "vllm_version", None)),
                   expandable_segments=bool(getattr(m, "expandable_segments", False)))


def _draft_for_release(draft, version):
    """A draft model's spec with the job's release's rope values (``served.release_values``: its derived maximum
    and rotary caches, as the target's); None stays None."""
    return None if draft is None else release_values(draft, version)


def _one_length(lens) -> int | None:
    """The job's max_model_len when it has a single value, else None."""
    values = set(lens or ())
    return int(values.pop()) if len(values) == 1 else None


# ``ModelTables.mxfp4_variant`` of a row the GPU does not change; SM12_ATTENTION: its third item on SM 12.x
NO_VARIANT = (None, None, None)
SM12_ATTENTION = "sm12"
# the third item for a Qwen GDN hybrid on a GPU where vLLM 0.33+ exports FlashInfer prefill checkpoints
# (hybrid.gdn_checkpoints: kv_groups(gdn_checkpoint=True))
GDN_CHECKPOINT = "gdn_ck"


def dsv4_attention_for(gpu: tuple | None) -> str | None:
    """DeepSeek-V4's attention backend on ``gpu`` = (compute capability, vLLM version) as far as the profile
    run differs: SM12_ATTENTION on SM 12.x (FlashInfer sparse MLA), else None (FlashMLA; a GPU of unknown
    capability keeps the H100 default)."""
    cc = gpu[0] if gpu is not None else None
    return SM12_ATTENTION if cc is not None and cc[0] == 12 else None


def dsa_indexer_workspace(g, spec, profile, version=None):
    """``g`` with ``dsa_ix`` set for a DSA model (DeepSeek-V3.2 / GLM-5: sparse MLA layers with an indexer key
    cache) under vLLM ``version`` ((major, minor); None: the profile's first release) from
    ``compressed.DSA_INDEXER_WORKSPACE_FROM`` (0.13, inside the 0.11-0.16 profile): the lightning indexer reserves
    its K gather, max_model_len x 40 rows of index_head_dim fp8 + 4 scale bytes (+ 1 MiB radix top-k scratch),
    in the profile run (sparse_attn_indexer.py @006475fe) -- priced per length by ``exprs.encoder_lens``.
    index_head_dim is the layers' ``LayerKV.index_head_dim`` (set from the config by ``families/deepseek_dsa``;
    DeepSeek-V4 layers leave it 0 and carry theirs on ``compressed``)."""
    from dataclasses import replace
    from . import compressed as cm
    d = max((l.index_head_dim for l in getattr(spec, "layers_kv", ()) if getattr(l, "sparse", False)), default=0)
    v = tuple(version[:2]) if version is not None else tuple(profile.first)
    if not d or g.tok_conc or v < cm.DSA_INDEXER_WORKSPACE_FROM:
        return g
    return replace(g, dsa_ix=d)


# FlashMLA-sparse's q-concat buffer: (max_num_batched_tokens, heads per rank, 576) bf16
FLASHMLA_SPARSE_Q_BYTES = 2


def flashmla_sparse_q_concat(g, spec, tp: int, kv_elem_bytes: float):
    """``g`` with ``fm_qc`` set for a DSA model (DeepSeek-V3.2 / GLM-5) with a bf16 (not quantized) KV cache: the
    bytes per batched token of the q-concat buffer FlashMLA-sparse reserves in ``FlashMLASparseImpl.__init__``
    -- ``q_concat_shape = (max_num_batched_tokens, num_heads, head_size)`` bf16 through
    ``current_workspace_manager().get_simultaneous`` and kept as ``self.q_concat_buffer``
    (vllm/v1/attention/backends/mla/flashmla_sparse.py of the v0.18.0 .. v0.28.0 sdists; v0.20.0 lines 750-776;
    v0.29.0 / v0.30.0 pad a bf16 cache's heads to 64 / 128 (``exprs.gpu_pass``'s ``fmq_pad``); from v0.31.0 and at
    main @008a0c31 the view is no longer kept).  ``num_heads`` is the
    rank's (TP-split) heads, ``head_size`` the 576-wide latent (``LayerKV.head_size_k``).  The buffer is made at
    model construction, inside "Model loading took": load-time memory, added per GPU in ``exprs.gpu_pass`` only
    where FlashMLA-sparse is the backend that runs and keeps it (``flashmla_q_concat_on``).  An fp8
    (``fp8_ds_mla``) cache is left at 0: there the same call also reserves the (5 x max_model_len, 576) bf16
    gather, and the profile run's MoE / indexer workspaces then fit inside that kept buffer -- not modelled."""
    from dataclasses import replace
    if g.tok_conc or kv_elem_bytes < 2:
        return g
    hs = max((l.head_size_k for l in getattr(spec, "layers_kv", ()) if getattr(l, "sparse", False)
              and getattr(l, "index_head_dim", 0)), default=0)
    heads = spec.num_attention_heads // tp if spec.num_attention_heads else 0
    if not hs or not heads:
        return g
    return replace(g, fm_qc=heads * hs * FLASHMLA_SPARSE_Q_BYTES, fm_h=heads)


# Where a DSA model's bf16 cache runs on FlashMLA-sparse, which keeps its q-concat buffer from model construction
# (``tables.flashmla_sparse_q_concat``; vLLM release sdists): v0.18.0 is the buffer's first release (v0.17.0 reserves
# the fp8 gather only); from v0.31.0 the view is no longer kept (the profile run's growth frees it: no net KV change).
# SM 9.x: FLASHMLA_SPARSE is the only sparse MLA backend up to v0.24.x; v0.25.0's cuda.py ``_get_backend_priorities``
# puts FLASH_ATTN_MLA_SPARSE (SM 9.x, bf16 caches, no workspace) ahead.  SM 10.x: FLASHINFER_MLA_SPARSE comes first
# at <= 16 heads a rank (the rank's heads, deepseek_v2.py ``num_local_heads``), FLASHMLA_SPARSE above; v0.29.0 /
# v0.30.0 pad a bf16 cache's q-concat heads to ``prefill_padding`` (128 on SM 10.x).
FLASHMLA_Q_CONCAT_SM9 = ((0, 18), (0, 25))
FLASHMLA_Q_CONCAT_SM10 = ((0, 18), (0, 29))
FLASHMLA_Q_CONCAT_SM10_PADDED = ((0, 29), (0, 31))
FLASHINFER_SPARSE_MAX_HEADS = 16


def flashmla_q_concat_on(capability, version) -> tuple[float, int, int]:
    """(on, fewest heads a rank, head padding) of FlashMLA-sparse's kept q-concat buffer for a DSA model's bf16 cache
    on one GPU under one vLLM (major, minor): an SM 9.x GPU (or one of unknown capability: the H100 default) under
    0.18-0.24, any heads; SM 10.x above 16 heads a rank under 0.18-0.28 (unpadded) and 0.29-0.30 (heads padded to 128).
    (0.0, 0, 0) elsewhere: SM 12.x / 8.x do not run FlashMLA-sparse's kept buffer in these versions."""
    if version is None:
        return 0.0, 0, 0
    v = tuple(version)
    major = 9 if capability is None else capability[0]
    if major == 9 and FLASHMLA_Q_CONCAT_SM9[0] <= v < FLASHMLA_Q_CONCAT_SM9[1]:
        return 1.0, 0, 0
    if major == 10 and FLASHMLA_Q_CONCAT_SM10[0] <= v < FLASHMLA_Q_CONCAT_SM10[1]:
        return 1.0, FLASHINFER_SPARSE_MAX_HEADS + 1, 0
    if major == 10 and FLASHMLA_Q_CONCAT_SM10_PADDED[0] <= v < FLASHMLA_Q_CONCAT_SM10_PADDED[1]:
        return 1.0, FLASHINFER_SPARSE_MAX_HEADS + 1, 128
    return 0.0, 0, 0


def sm12_attention_workspace(g):
    """DeepSeek-V4 on SM 12.x: vLLM runs FlashInfer's SM120 sparse MLA (FLASHINFER_MLA_SPARSE_DSV4, the only
    DeepSeek-V4 backend for capability 12; FlashMLA needs SM 9.x / 10.x), whose dummy run reserves FlashInfer's
    128 MiB workspace and not the bf16 prefill gather (``compressed.profile_workspace_bytes``)."""
    from dataclasses import replace

    from . import compressed as cm
    return replace(g, ws_b=0, ws_fi=cm.FLASHINFER_SM120_WORKSPACE)


class _Invalid(str):
    """A KV-layout error that is vLLM refusing the configuration (``invalid_layout``), not a modelling gap."""


class ModelTables:
    """Layout rows of one model, memoised: a job crosses hundreds of layouts with a few dtypes,
    and most of a row depends on fewer axes than the row has (dense models ignore dp and ep for
    weights; the KV groups ignore dp, ep and the weight dtype)."""

    def __init__(self, spec: ModelSpec, block_size: int | None = None, engine: EngineOptions | None = None,
                 profile: vp.VllmProfile | None = None, state_mode: str = "none"):
        self.spec = spec
        self.engine = engine or EngineOptions()
        self.profile = profile or vp.DEFAULT_PROFILE
        # None: the release's default (no --block-size)
        self.block_size = block_size or self.profile.default_block_size
        self.state_mode = state_mode       # vLLM mamba_cache_mode for state layers (estimate/hybrid.py)
        self._schemes: dict = {}
        self._plan: TensorPlan | None = None   # the tensors' places and groups the weight dtypes share
        self._kv: dict = {}
        self._kv_scan: KvScan | None = None    # the layer scan the (tp, pp, kv dtype) groups share
        self._body: dict = {}
        self._rules: dict = {}
        self._rule_in: tuple | None = None     # rule_inputs(spec), for every layout
        self._kv_used: dict = {}
        self._alloc: dict = {}        # model dtype bytes / ("q", wd, mxfp4) -> weights.AllocatorPlan (unsplit blocks)
        self._stages: dict = {}       # stage weights and activation coefficients per (weights_as, layout):
        self._coeffs: dict = {}       # the rows of both KV dtypes share them
        self._gtuple: dict = {}       # id(KvGroups) -> (note, GROUP_FIELDS values); the groups live in _kv
        self._lay_terms: dict = {}    # (tp, pp, MoE dp, act bytes) -> _layout_terms
        self.facts = model_facts(spec) if not spec.unsupported_reason else None
        self._moe = self.facts.is_moe if self.facts is not None else False
        self._graph: dict = {}        # (layers with graphs, tp) -> graph_gib
        self.kinds = state_kinds(spec)          # (hybrid, gdn): per model, not per row
        # vLLM 0.22-0.28 run some architectures on Model Runner V2 by name (profiles.MRV2_NAMED_ARCHS): no graph
        # estimate from the budget, MRV2's profile-run sampler
        self.named_mrv2 = self.facts is not None and vp.named_mrv2(
            self.engine.vllm_version or self.profile.first, spec.architectures, self.facts.is_moe,
            spec.quantization_config is not None, self.kinds[0])
        # speculative decoding: the draft's weights, KV layers and graph layers (specdecode.py)
        sd = self.engine.spec_decode
        self.draft = sdm.resolve(spec, sd, self.engine.draft_spec) if sd and not spec.unsupported_reason else None
        self.kv_spec = spec
        if self.draft is not None and not self.draft.reason and self.draft.layers_kv:
            from dataclasses import replace
            self.kv_spec = replace(spec, layers_kv=list(spec.layers_kv) + list(self.draft.layers_kv))
        self._draft_w: dict = {}
        self._mx: dict = {}           # weights_as -> (main, draft) have MXFP4 experts (mxfp4_variant)
        self._nv: dict = {}           # weights_as -> the NVFP4 layout of the routed experts as shipped, or None
        self._variants: dict = {}     # (weights_as, GPU key) -> mxfp4_variant
        self._dsv4: bool | None = None   # DeepSeek-V4 compressed attention (_dsv4_attention)
        # the draft's layers join the last stage's captured graphs (unless its own enforce_eager)
        self._d_layers = (self.draft.graph_layers if self.draft is not None
                          and not getattr(sd, "enforce_eager", None) else 0)

    def mxfp4_variant(self, wd: str, gpu: tuple | None) -> tuple:
        """What of one GPU changes this model's ``wd`` rows: (the MXFP4 MoE backend of its experts, that of
        its draft's, its DeepSeek-V4 attention backend), each None where it does not apply -- ``NO_VARIANT``,
        the same rows on every GPU, for all but an MXFP4 checkpoint served as shipped and DeepSeek-V4.
        ``gpu``: (compute capability, vLLM (major, minor)), ``matrix.mxfp4_gpus``; None or a capability of
        None = not known (the Triton default, the H100's FlashMLA gather).  DeepSeek-V4 on SM 10.x and 12.x
        shares the expert layout (DeepGemm) but not the attention workspace: the third item tells them apart."""
        key = (wd, gpu)
        v = self._variants.get(key)
        if v is None:
            mx = self._mxfp4_at(wd)
            nv = self._nvfp4_at(wd)
            expert = (mxfp4_backend_for(self.spec, gpu) if mx[0] else
                      nvfp4_backend_for(self.spec, gpu, self.engine.moe_backend, not nv.input_scale) if nv else None)
            why = moe_backend_refusal_for(self.spec, gpu, self.engine.moe_backend, nv, mx[0])
            if why:                  # vLLM refuses the explicit --moe-backend here: the variant carries the verdict
                expert = _Invalid(why)
            v = self._variants[key] = (expert,
                                       mxfp4_backend_for(self.draft.weights, gpu) if mx[1] else None,
                                       dsv4_attention_for(gpu) if self._dsv4_attention() else
                                       GDN_CHECKPOINT if self._gdn_checkpoint(gpu) else None)
        return v

    def _gdn_checkpoint(self, gpu: tuple | None) -> bool:
        """vLLM 0.33+ exports this Qwen GDN hybrid's FlashInfer prefill checkpoints on ``gpu`` = (compute capability,
        ...) (hybrid.gdn_checkpoints; a capability of None counts as the H100)."""
        return not self.spec.unsupported_reason and hybrid.gdn_checkpoints(
            self.kv_spec, tuple(self.engine.vllm_version or self.profile.first), self.state_mode,
            gpu[0] if gpu is not None else None)

    def _dsv4_attention(self) -> bool:
        """The model has DeepSeek-V4's compressed attention (its profile-run workspace is per GPU)."""
        if self._dsv4 is None:
            self._dsv4 = not self.spec.unsupported_reason and any(
                getattr(layer, "compressed", None) is not None for layer in self.kv_spec.layers_kv)
        return self._dsv4

    def _nvfp4_at(self, wd: str):
        """The NVFP4 layout of the routed experts as shipped at ``wd`` (their per-rank layout follows the GPU's
        backend), or None."""
        if wd not in self._nv:
            qc = self.spec.quantization_config
            self._nv[wd] = (experts_nvfp4(self.spec, self._scheme(wd)[0]) if self._moe and qc and wd.lower() in
                            ("checkpoint", "auto") and not self.spec.unsupported_reason else None)
        return self._nv[wd]

    def _nvfp4_refusal(self, lay: Layout, scheme) -> str | None:
        """vLLM's load-time refusal of the NVFP4 experts' layout on this layout (``layouts.nvfp4_layout_refusal``)."""
        from .quant.layouts import nvfp4_layout_refusal
        downs = [t for t in self.spec.tensors if t.component is Component.ROUTED_EXPERTS and len(t.shape) >= 2
                 and ("down" in t.name or ".w2" in t.name)]
        if not downs:
            return None
        moe_tp = 1 if lay.ep else lay.tp * lay.dp
        return nvfp4_layout_refusal(scheme.moe_padding, downs[0].shape[-1], moe_tp)

    def _mxfp4_at(self, wd: str) -> tuple[bool, bool]:
        """(main, draft) weights hold MXFP4 experts as shipped at ``wd``."""
        mx = self._mx.get(wd)
        if mx is None:
            as_shipped = wd.lower() in ("checkpoint", "auto") and not self.spec.unsupported_reason
            dw = self.draft.weights if self.draft is not None else None
            mx = self._mx[wd] = (as_shipped and mxfp4_moe_experts(self.spec.quantization_config),
                                 as_shipped and dw is not None and mxfp4_moe_experts(dw.quantization_config))
        return mx

    def mxfp4_variants(self, wd: str, gpus: list) -> tuple[list[tuple], list[int] | None]:
        """The distinct ``mxfp4_variant`` of ``wd`` over ``gpus`` (first-seen order) and each GPU's index into
        them (None when there is one: every row without MXFP4 experts, at no per-GPU cost)."""
        if (not any(self._mxfp4_at(wd)) and not self._dsv4_attention() and not self._nvfp4_at(wd)
                and not self._gdn_checkpoint(None)):
            return [NO_VARIANT], None
        per_gpu = [self.mxfp4_variant(wd, g) for g in gpus]
        distinct = list(dict.fromkeys(per_gpu))
        return distinct, ([distinct.index(v) for v in per_gpu] if len(distinct) > 1 else None)

    def _scheme(self, wd: str, mxfp4: str | None = None):
        key = (wd, mxfp4)
        if key not in self._schemes:
            eng = self.engine
            act_b = act_bytes_for(wd, self.spec, eng.dtype)
            try:
                scheme = scheme_for(self.spec, wd, eng.dtype, eng.quantization, mxfp4)
                if self._plan is None:
                    self._plan = TensorPlan(self.spec)
                self._schemes[key] = (scheme, build_weight_table(self.spec, scheme, act_b, self._plan,
                                                                eng.max_model_len), act_b, None)
            except Exception as e:  # UnsupportedQuantization and friends: a named reason, not a crash
                self._schemes[key] = (None, None, act_b, f"{type(e).__name__}: {e}")
        return self._schemes[key]

    def _groups(self, tp: int, pp: int, kd: str, act_b: float, attn: str | None = None):
        """The KV groups of one (tp, pp, kv dtype); ``attn``: the GPU's DeepSeek-V4 attention backend
        (``mxfp4_variant``'s third item: "sm12" = FlashInfer's sparse MLA, its workspace instead of the gather;
        GDN_CHECKPOINT = a Qwen GDN hybrid's FlashInfer prefill checkpoints, vLLM 0.33+)."""
        key = (tp, pp, kd, act_b, attn)
        if key not in self._kv:
            if self._kv_scan is None:
                self._kv_scan = KvScan(self.kv_spec.layers_kv)
            try:
                eb = kv_element_bytes(kd, act_b, self.spec)
                g = kv_groups(self.kv_spec, tp, pp, kd, eb, self.block_size, state_conv_bytes=act_b,
                              state_mode=self.state_mode, indexer_kv_dtype=self.engine.indexer_kv_dtype,
                              scan=self._kv_scan, default_block=self.profile.default_block_size,
                              version=tuple(self.engine.vllm_version or self.profile.first),
                              gdn_checkpoint=attn == GDN_CHECKPOINT)
                g = sm12_attention_workspace(g) if g.tok_conc and attn == SM12_ATTENTION else g
                g = flashmla_sparse_q_concat(g, self.kv_spec, tp, eb)
                self._kv[key] = (dsa_indexer_workspace(g, self.kv_spec, self.profile, self.engine.vllm_version),
                                 None)
            except InvalidKvDtype as e:      # vLLM refuses the start (an assert): a verdict, not a gap
                self._kv[key] = (None, _Invalid(str(e)))
            except (UnsupportedKvDtype, ValueError) as e:
                self._kv[key] = (None, str(e))
        return self._kv[key]

    def _draft_bytes(self, lay: Layout, wd: str, mxfp4: str | None = None) -> float:
        """Draft weights on one rank (the draft runs at the target's TP, one stage; specdecode.py)."""
        d = self.draft
        if d is None or d.weights is None:
            return 0.0
        moe = bool(d.weights.num_experts)
        key = (wd, lay.tp, lay.dp if moe else 1, lay.ep and moe, mxfp4)
        if key not in self._draft_w:
            eng = self.engine
            act_b = act_bytes_for(wd, self.spec, eng.dtype)
            quant = eng.quantization if d.method == "mtp" else (getattr(eng.spec_decode, "quantization", None) or None)
            scheme = scheme_for(d.weights, wd, eng.dtype, quant, mxfp4)
            table = build_weight_table(d.weights, scheme, act_b)
            self._draft_w[key] = stage_weights(table, Layout(lay.tp, 1, lay.dp, lay.ep and moe))[0].bytes
        return self._draft_w[key]

    def _body_of(self, lay: Layout, wd: str, kd: str, mxfp4: tuple = NO_VARIANT):
        """(error, body tuple, flat slots, n slots) for the parts of a row the rules do not touch;
        ``mxfp4``: the row's ``mxfp4_variant``."""
        moe = self._moe
        key = (wd, kd, lay.tp, lay.pp, lay.dp if moe else 1, lay.ep and moe, mxfp4)
        hit = self._body.get(key)
        if hit is not None:
            return hit
        if isinstance(mxfp4[0], _Invalid):     # mxfp4_variant: vLLM refuses the explicit --moe-backend on this GPU
            hit = self._body[key] = (mxfp4[0], _EMPTY_BODY, (), 0)
            return hit
        scheme, wtable, act_b, err = self._scheme(wd, mxfp4[0])
        if not err and mxfp4[0] in NVFP4_BACKEND_NAMES:
            why = self._nvfp4_refusal(lay, scheme)
            err = _Invalid(why) if why else None         # vLLM refuses the start: a verdict, not a gap
        g, kerr = (None, None) if err else self._groups(lay.tp, lay.pp, kd, act_b, mxfp4[2])
        draft_b, derr = 0.0, None
        if not (err or kerr) and self.draft is not None:
            try:
                draft_b = self._draft_bytes(lay, wd, mxfp4[1])
            except Exception as e:     # the draft's quantization: a named reason, not a crash
                derr = f"speculative decoding draft: {type(e).__name__}: {e}"
        if err or kerr or derr:
            hit = (err or kerr or derr, _EMPTY_BODY, (), 0)
        else:
            slots, seen, g_max = [], set(), 0.0
            d = self.draft
            d_layers = self._d_layers
            sw_key = (wd, lay.tp, lay.pp, lay.dp, lay.ep)      # the same for both KV dtypes
            st_key = (sw_key, mxfp4[0])
            stages = self._stages.get(st_key)
            if stages is None:
                stages = stage_weights(wtable, lay)
                # vLLM 0.21+: the allocator's unsplit >= 20 MiB blocks of the weights (weights.allocator_unsplit_bytes)
                # (quantized schemes: each layer's final parts, AllocatorPlan.quantized, branch quantalloc)
                mdb = getattr(scheme, "model_dtype_bytes", None)
                rules = scheme_rules(scheme)
                plan = None
                if mdb is not None and rules is not None:
                    plan = self._alloc.get(mdb)
                    if plan is None:
                        plan = self._alloc[mdb] = AllocatorPlan(self.spec, float(mdb))
                    if rules != ():
                        qkey = ("q", wd, mxfp4[0])
                        base, plan = plan, self._alloc.get(qkey)
                        if plan is None:
                            plan = self._alloc[qkey] = base.quantized(scheme)
                extra = allocator_unsplit_bytes(self.spec, scheme, lay,
                                                tuple(self.engine.vllm_version or self.profile.first), plan,
                                                self.engine.expandable_segments)
                if any(extra):
                    stages = [replace(st, bytes=st.bytes + x) for st, x in zip(stages, extra)]
                self._stages[st_key] = stages
            bpb, tokb, stb, wsr = g.stage_bytes_per_block, g.stage_token_bytes, g.stage_state_bytes, g.stage_ws_ratio
            graph_memo = self._graph
            last_s = lay.pp - 1
            for s, st in enumerate(stages):
                layers = st.layers[1] - st.layers[0]
                last = s == last_s
                w_b = st.bytes + (draft_b if last else 0.0)
                ws = wsr[s] if wsr else 0
                sb = stb[s] if stb else 0.0
                prof = (round(w_b), bpb[s], layers, last, sb, ws)
                if prof in seen:
                    continue
                seen.add(prof)
                g_key = (layers + (d_layers if last else 0), lay.tp)
                gg = graph_memo.get(g_key)
                if gg is None:
                    gg = graph_memo[g_key] = graph_gib(g_key[0], lay.tp, self.facts.hidden, moe,
                                                       not self.engine.enforce_eager)
                if gg > g_max:
                    g_max = gg
                label = _LABELS.get((s, st.ep_rank)) or _LABELS.setdefault((s, st.ep_rank), rank_label(s, st.ep_rank))
                slots.extend((w_b / GIB, bpb[s], gg, last, label, tokb[s], sb, ws))
            co = self._coeffs.get(st_key)
            if co is None:
                co = self._coeffs[st_key] = self._coeff_tuple(lay, act_b, scheme)
            gt = self._gtuple.get(id(g))
            if gt is None:
                gt = self._gtuple[id(g)] = (g.note or None, *(getattr(g, x) for x in GROUP_FIELDS))
            kv_used = self._kv_used.get((wd, kd))
            if kv_used is None:
                kv_used = self._kv_used[(wd, kd)] = kv_cache_dtype_used(
                    kd, serving_dtype(self.spec, wd, self.engine.dtype), self.spec)
            lt_key = (lay.tp, lay.pp, lay.dp if moe else 1, act_b)
            lt = self._lay_terms.get(lt_key)
            if lt is None:
                lt = self._lay_terms[lt_key] = self._layout_terms(lay, act_b)
            # per GPU (exprs.gpu_pass): nt_nvls = the NVLS share of nt, ca = the custom all-reduce buffers
            # a GPU not all NVLink-linked drops (TP > 2)
            body = (getattr(scheme, "name", wd), kv_used, gt[0], *lt[:4], g_max, *lt[4:], *co, *gt[1:],
                    d.label if d is not None else None, draft_b / GIB if d is not None else None)
            hit = (None, body, tuple(slots), len(slots) // len(SLOT_FIELDS))
        self._body[key] = hit
        return hit

    def _coeff_tuple(self, lay: Layout, act_b: float, scheme=None) -> tuple:
        """The COEFF_FIELDS of one (weights_as, layout): the rows of both KV dtypes share them.  With
        ``--moe-backend cutlass`` and NVFP4 experts as shipped, the MoE step (``cutlass_nvfp4_moe_coeffs``)
        is a peak beside the dense forward -- max(F, step), both linear in T, so folded into ``a_fwd_t``
        (a GDN model's ``a_state_r`` then adds to both sides: not read) -- and its workspaces replace
        ``a_moe_t``."""
        f, d, pr = self.facts, self.draft, self.profile
        # 0.10-0.16 profile-run sampler: the sort-based PyTorch top-k/top-p adds sampler_extra_bytes;
        # with the FlashInfer sampler (VLLM_USE_FLASHINFER_SAMPLER) there is no sort
        extra = 0.0 if self.engine.flashinfer_sampler else pr.sampler_extra_bytes
        co = activation_coeffs(f, lay, act_b, sampler_extra=extra,
                               mrv2=vp.runs_mrv2(pr, f.is_moe, self.kinds[0]) or self.named_mrv2,
                               gdn_copies=pr.gdn_state_copies)
        if getattr(getattr(scheme, "moe_padding", None), "name", None) == CUTLASS_NVFP4_BACKEND:
            step, ws = cutlass_nvfp4_moe_coeffs(f, lay, act_b)
            co["a_fwd_t"] = max(co["a_fwd_t"], step)
            co["a_add_t"] += ws - co["a_moe_t"]
            co["a_moe_t"] = ws
        if d is not None:   # the draft proposer's persistent buffers; EAGLE-3's aux states in the forward
            co["a_add_t"] += d.buffer_elems_t * act_b + d.buffer_bytes_t
            co["a_fwd_t"] += d.fwd_elems_t * act_b
        return tuple(co[c] for c in COEFF_FIELDS)

    def _layout_terms(self, lay: Layout, act_b: float) -> tuple:
        """(nt, ctx, nt_nvls, ca, g_big, g_bf, gdn_t): the body terms set by (tp, pp, MoE dp) and the model."""
        f, pr, moe = self.facts, self.profile, self.facts.is_moe
        hybrid, gdn = self.kinds
        g_bf = 0.0 if self.named_mrv2 else vp.budget_graph_factor(pr, moe, hybrid)   # MRV2 estimates 0 before 0.29
        # 0.26+: the graph estimate's capture runs the FLA chunk prefill at T batched tokens (per-rank
        # heads); none with --enforce-eager (no capture profiled) or where the estimate is not taken
        gdn_t = (pr.gdn_transient_scale * oh.gdn_transient_bytes_per_token(f.chunk_state, lay.tp, act_b)
                 if (gdn and g_bf > 0 and not self.engine.enforce_eager) else 0.0)
        # gpt_oss raises the capture maximum from 0.10.1 (none in 0.10.0; 992 in 0.11.0: profiles.model_max_capture)
        g_big = 1.0 if vp.model_max_capture(getattr(self.spec, "model_type", None), self.engine.vllm_version) else 0.0
        nt = non_torch_gib(lay, moe, pr)
        ca_off = self.engine.disable_custom_all_reduce
        return (nt, context_gib(lay, moe, ca_off), nt - non_torch_gib(lay, moe, pr, nvls=False),
                custom_ar_gib(lay, ca_off) if lay.tp > 2 else 0.0, g_big, g_bf, gdn_t)

    def row(self, lay: Layout, wd: str, kd: str, mxfp4: tuple = NO_VARIANT) -> tuple[tuple, tuple, int]:
        """``(head + body, flat slots, n slots)`` for one (layout, weight dtype, KV dtype)."""
        status, reason, (_, body, slots, n) = self.row_parts(lay, wd, kd, mxfp4)
        return (lay.tp, lay.pp, lay.dp, lay.ep, wd, kd, status, reason) + body, slots, n

    def row_parts(self, lay: Layout, wd: str, kd: str,
                  mxfp4: tuple = NO_VARIANT) -> tuple[str | None, str | None, tuple]:
        """``(pre_status, pre_reason, part)`` of one row: ``part[1:]`` = (body, flat slots, n slots), one
        object shared by every row with that body (``layout_table`` builds each distinct body once).
        ``mxfp4``: the ``mxfp4_variant`` of the GPUs the row is for (``NO_VARIANT``: no MXFP4 experts, or
        the Triton default)."""
        spec = self.spec
        if spec.unsupported_reason:
            return "unsupported", spec.unsupported_reason, _NO_BODY
        if lay.pp > 1 and spec.pp_unsupported:
            return "unsupported", spec.pp_unsupported, _NO_BODY
        tp_cap = getattr(spec, "tp_unsupported", None)
        if tp_cap and lay.tp > tp_cap[0]:
            return "unsupported", tp_cap[1], _NO_BODY
        if self.draft is not None:
            why = self.draft.reason or sdm.draft_tp_reason(self.engine.spec_decode, lay.tp)
            if why is None and lay.pp > 1 and self.draft.weights is not None:
                why = (f"speculative decoding ({self.draft.method}) with pipeline parallelism (pp {lay.pp}): vLLM "
                       "builds the whole draft on the last PP rank (gpu_model_runner.py) and never shares the "
                       "target's embedding there (llm_base_proposer.py); the draft's KV layers on that stage only "
                       "and its buffers there are not modelled")
            if why:
                return "unsupported", why, _NO_BODY
        part = self._body_of(lay, wd, kd, mxfp4)
        err = part[0]
        if err:                                   # the part's body is _EMPTY_BODY, no slots
            return "invalid_layout" if isinstance(err, _Invalid) else "unsupported", str(err), part
        rule = self._rules.get(lay, _UNSET)
        if rule is _UNSET:                        # the rules see the layout only, not the dtypes
            if self._rule_in is None:
                self._rule_in = rule_inputs(spec)
            rule = model_rule(spec, lay, self._rule_in)
            dw = self.draft.weights if self.draft is not None else None
            if rule is None and dw is not None and self.draft.method in sdm.DRAFT_CHECKPOINT_METHODS:
                rule = model_rule(dw, Layout(lay.tp, 1, 1, False))
                rule = f"draft model: {rule}" if rule else None
            self._rules[lay] = rule
        return "invalid_layout" if rule else None, rule, part


_UNSET = object()
_LABELS: dict = {}      # (stage, EP rank) -> rank_label


def max_len_limit(spec: ModelSpec) -> int | None:
    """The longest ``--max-model-len`` vLLM starts with: the arch layer's derived maximum
    (``spec.max_model_len_limit``, rope scaling applied -- arch/rope.py), else -- a spec built by
    hand -- ``max_position_embeddings``; None (or 0) = no limit."""
    limit = getattr(spec, "max_model_len_limit", None)
    if limit is None:
        limit = spec.max_position_embeddings
    return int(limit) if limit else None


def spec_axes(spec: ModelSpec) -> dict:
    """Model-level columns carried into every result row (``max_pos``: the max_model_len limit)."""
    total = spec.params_total
    # params_active is params_total without experts: one pass over the tensors, not two
    return {"model_type": spec.model_type, "params_total": total,
            "params_active": spec.params_active if spec.num_experts else total, "max_pos": max_len_limit(spec)}
