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

This module holds the model facts, the row field tuples, the engine options and ``ModelTables``; the
pieces it assembles live beside it, one concern each: ``schemes`` (storage scheme and MoE kernel backend),
``startup`` (non-torch, context, custom all-reduce, CUDA graphs), ``activation`` (the profile-run
activation coefficients) and ``workspaces`` (per-GPU attention kernel workspaces).  Their names are
re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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
from .served import release_values
from .weights import (AllocatorPlan, TensorPlan, allocator_unsplit_bytes, build_weight_table, scheme_rules,
                      stage_weights)

# Split out by concern (docs/decisions.md); imported here for ModelTables and re-exported so that
# ``reportgen.estimate.tables.<name>`` keeps working for every caller, test and script.
from .activation import (activation_coeffs, activation_gib, cutlass_nvfp4_moe_coeffs,  # noqa: F401
                         topk_buffer_bytes_per_token)
from .schemes import (CUTLASS_NVFP4_BACKEND, GATED_MOE_ACTIVATIONS, NVFP4_BACKEND_NAMES, PLAIN_ACT,  # noqa: F401
                      act_bytes_for, experts_nvfp4, moe_activation, moe_backend_refusal_for, mxfp4_backend_for,
                      nvfp4_backend_for, scheme_for, serving_dtype, unquantized_moe_backend_for)
from .startup import context_gib, custom_ar_gib, graph_gib, non_torch_gib  # noqa: F401
from .workspaces import (FLASHINFER_SPARSE_MAX_HEADS, FLASHMLA_Q_CONCAT_SM10, FLASHMLA_Q_CONCAT_SM10_PADDED,  # noqa: F401
                         FLASHMLA_Q_CONCAT_SM9, FLASHMLA_SPARSE_Q_BYTES, SM12_ATTENTION, dsa_indexer_workspace,
                         dsv4_attention_for, flashmla_q_concat_on, flashmla_sparse_q_concat, sm12_attention_workspace)

GIB = float(1 << 30)


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
# (TP > 2); g_big: 1 when the model raises vLLM's maximum capture size (profiles.MODEL_MAX_CAPTURE); g_r: the
# runner's share of the fitted (Model Runner V1) graph memory -- oh.MRV2_GRAPH_RATIO on Model Runner V2, else 1
# spec_decode: the speculative method and draft priced (text); draft_w: draft weights on the last stage, GiB
BODY_FIELDS = ("weight_scheme", "kv_cache_dtype_used", "kv_note", "nt", "ctx", "nt_nvls", "ca", "g_max", "g_big",
               "g_bf", "gdn_t", "g_r",
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
    # VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS as the deployment sets it, where it decides anything
    # (Matrix.estimate_cudagraphs_used; None: the release's default): whether the graph estimate is taken from the
    # budget (profiles.budget_graph_factor)
    estimate_cudagraphs: bool | None = None

    @classmethod
    def from_matrix(cls, m) -> "EngineOptions":
        return cls(getattr(m, "dtype", "auto") or "auto", getattr(m, "quantization", None),
                   vp.graphs_off(m),      # --enforce-eager, or compilation_config cudagraph_mode NONE
                   getattr(m, "enable_prefix_caching", None),
                   getattr(m, "flashinfer_sampler", None),
                   sdm.parse_speculative_config(getattr(m, "speculative_config", None)),
                   _draft_for_release(getattr(m, "draft_spec", None), getattr(m, "vllm_version", None)),
                   getattr(m, "indexer_kv_dtype", None) or "bf16",
                   disable_custom_all_reduce=bool(getattr(m, "disable_custom_all_reduce", False)),
                   moe_backend=getattr(m, "moe_backend", None) or "auto",
                   max_model_len=_one_length(getattr(m, "max_model_len", None)),
                   vllm_version=vp.parse_version(getattr(m, "vllm_version", None)),
                   expandable_segments=bool(getattr(m, "expandable_segments", False)),
                   estimate_cudagraphs=getattr(m, "estimate_cudagraphs_used", None))


def _draft_for_release(draft, version):
    """A draft model's spec with the job's release's rope values (``served.release_values``: its derived maximum
    and rotary caches, as the target's); None stays None."""
    return None if draft is None else release_values(draft, version)


def _one_length(lens) -> int | None:
    """The job's max_model_len when it has a single value, else None."""
    values = set(lens or ())
    return int(values.pop()) if len(values) == 1 else None


# ``ModelTables.mxfp4_variant`` of a row the GPU does not change; SM12_ATTENTION (workspaces.py): its third item
# on SM 12.x
NO_VARIANT = (None, None, None)
# the third item for a Qwen GDN hybrid on a GPU where vLLM 0.33+ exports FlashInfer prefill checkpoints
# (hybrid.gdn_checkpoints: kv_groups(gdn_checkpoint=True))
GDN_CHECKPOINT = "gdn_ck"


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
        version = self.engine.vllm_version or self.profile.first
        quantized = spec.quantization_config is not None
        self.named_mrv2 = self.facts is not None and vp.named_mrv2(
            version, spec.architectures, self.facts.is_moe, quantized, self.kinds[0])
        # the model runs on Model Runner V2 under this version (by the profile's rule or by name): its profile-run
        # sampler (activation_coeffs) and its graph memory (oh.MRV2_GRAPH_RATIO)
        self.mrv2 = self.facts is not None and vp.model_runs_mrv2(
            self.profile, version, spec.architectures, self.facts.is_moe, quantized, self.kinds[0])
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
                      nvfp4_backend_for(self.spec, gpu, self.engine.moe_backend, not nv.input_scale) if nv else
                      unquantized_moe_backend_for(self.spec, gpu, self.engine.moe_backend)
                      if self._bf16_experts_at(wd) else None)
            why = moe_backend_refusal_for(self.spec, gpu, self.engine.moe_backend, nv, mx[0])
            if why:                  # vLLM refuses the explicit --moe-backend here: the variant carries the verdict
                expert = _Invalid(why)
            v = self._variants[key] = (expert,
                                       mxfp4_backend_for(self.draft.weights, gpu) if mx[1] else None,
                                       dsv4_attention_for(gpu) if self._dsv4_attention() else
                                       GDN_CHECKPOINT if self._gdn_checkpoint(gpu) else None)
        return v

    def _bf16_experts_at(self, wd: str) -> bool:
        """The routed experts are served unquantized at ``wd`` (the checkpoint as shipped, no quantization_config,
        no online --quantization) with a routing method the family module worked out (``ModelSpec.moe_routing``):
        their per-rank layout follows the GPU (FlashInfer TRT-LLM's padding on SM 10.x,
        ``schemes.unquantized_moe_backend_for``)."""
        return (self._moe and not self.spec.unsupported_reason and wd.lower() in ("checkpoint", "auto")
                and not self.spec.quantization_config and not self.engine.quantization
                and bool(getattr(self.spec, "moe_routing", "")))

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
                and not self._gdn_checkpoint(None) and not self._bf16_experts_at(wd)):
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
        # MRV2's profile-run sampler per release (oh.mrv2_sampler_bytes): no fp32 copy 0.28-0.32, FlashInfer pass 0.33+
        co = activation_coeffs(f, lay, act_b, sampler_extra=extra,
                               mrv2=self.mrv2,
                               gdn_copies=pr.gdn_state_copies,
                               mrv2_sampler_bytes=oh.mrv2_sampler_bytes(self.engine.vllm_version or pr.first,
                                                                        self.engine.flashinfer_sampler))
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
        """(nt, ctx, nt_nvls, ca, g_big, g_bf, gdn_t, g_r): the body terms set by (tp, pp, MoE dp) and the model."""
        f, pr, moe = self.facts, self.profile, self.facts.is_moe
        hybrid, gdn = self.kinds
        g_bf = (0.0 if self.named_mrv2 else       # MRV2 estimates 0 before 0.29
                vp.budget_graph_factor(pr, moe, hybrid, self.engine.estimate_cudagraphs))
        # 0.26+: the graph estimate's capture runs the FLA chunk prefill at T batched tokens (per-rank
        # heads); none with --enforce-eager (no capture profiled) or where the estimate is not taken
        gdn_t = (pr.gdn_transient_scale * oh.gdn_transient_bytes_per_token(f.chunk_state, lay.tp, act_b)
                 if (gdn and g_bf > 0 and not self.engine.enforce_eager) else 0.0)
        # gpt_oss raises the capture maximum from 0.10.1 (none in 0.10.0; 992 in 0.11.0: profiles.model_max_capture)
        g_big = 1.0 if vp.model_max_capture(getattr(self.spec, "model_type", None), self.engine.vllm_version) else 0.0
        nt = non_torch_gib(lay, moe, pr)
        ca_off = self.engine.disable_custom_all_reduce
        return (nt, context_gib(lay, moe, ca_off), nt - non_torch_gib(lay, moe, pr, nvls=False),
                custom_ar_gib(lay, ca_off) if lay.tp > 2 else 0.0, g_big, g_bf, gdn_t,
                oh.MRV2_GRAPH_RATIO if self.mrv2 else 1.0)

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
