"""The normalized architecture spec: the one contract between `arch` and `estimate`.

Why a tensor list and not a handful of totals: vLLM shards every weight by its
role (column / row parallel, replicated K/V heads, vocab-parallel, experts), and
quantization schemes store scales per tensor *shape* (per channel, per group,
per 128x128 block).  Keeping the weights as shaped tensors with a sharding class
lets the estimator compute exact bytes on any rank for any layout and scheme,
and lets the parameter count be a plain sum.  Identical tensors (the experts of
one layer) are one entry with ``count``.

Everything here is plain data: no transformers, no polars.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from math import prod

from reportgen.arch.state import StateGeometry


class Shard(str, Enum):
    """How vLLM splits a tensor across tensor-parallel (and expert-parallel) ranks."""

    COLUMN = "column"        # ColumnParallelLinear / MergedColumn: output dim / tp (bias too)
    ROW = "row"              # RowParallelLinear: input dim / tp (bias replicated: mark bias REPLICATED)
    KV = "kv"                # K/V part of QKVParallelLinear: per rank max(1, n_kv // tp) / n_kv of it
    REPLICATED = "replicated"  # norms, routers, MLA down-projections, row-parallel biases
    VOCAB = "vocab"          # VocabParallelEmbedding / ParallelLMHead: rows padded to 64, / tp
    EXPERT = "expert"        # routed experts: / (tp*dp) without EP; whole experts per rank with EP


class Component(str, Enum):
    """What a tensor is, for the per-component parameter breakdown."""

    EMBEDDING = "embedding"
    LM_HEAD = "lm_head"
    ATTENTION = "attention"
    DENSE_MLP = "dense_mlp"
    ROUTED_EXPERTS = "routed_experts"
    SHARED_EXPERTS = "shared_experts"
    ROUTER = "router"
    NORM = "norm"
    LINEAR_ATTENTION = "linear_attention"
    VISION = "vision"        # vision / audio tower and its projector
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Tensor:
    """One weight tensor (or ``count`` identical ones, e.g. the experts of a layer).

    ``shape`` is the checkpoint shape: ``(out_features, in_features)`` for a linear
    weight, ``(n,)`` for a bias or norm, ``(rows, hidden)`` for an embedding.
    ``layer`` is the decoder-layer index (drives pipeline-stage placement); None
    for tensors outside the decoder stack (embedding, lm_head, final norm, vision).
    ``quantizable``: a Linear weight a checkpoint scheme may quantize (not
    norms, biases, embeddings, routers unless the scheme says so).
    ``allocated_only``: vLLM allocates (and loads) this tensor but the model has no such
    parameter -- e.g. the K/V projections vLLM keeps on Gemma-4's KV-shared layers, or the V slot
    it fills with K on ``attention_k_eq_v`` layers.  It costs bytes on the GPU but is not counted
    in the parameter totals (which equal the meta-device count).
    ``dtype_bytes``: element size the model code fixes for this tensor whatever the checkpoint or
    ``--dtype`` say (vLLM builds LongCat-Flash's router in float32: 4); 0 = the weight scheme decides.
    """

    name: str
    shape: tuple[int, ...]
    shard: Shard
    component: Component
    layer: int | None = None
    count: int = 1
    quantizable: bool = False
    allocated_only: bool = False
    dtype_bytes: int = 0

    @property
    def numel(self) -> int:
        return prod(self.shape) * self.count

    @property
    def params(self) -> int:
        """Parameters this tensor adds to the model's count (0 for an ``allocated_only`` copy)."""
        return 0 if self.allocated_only else self.numel


class AttentionKind(str, Enum):
    """One small spec type per attention kind, as vLLM's kv_cache_interface.py has."""

    FULL = "full"            # FullAttentionSpec
    SLIDING = "sliding"      # SlidingWindowSpec (window tokens)
    CHUNKED = "chunked"      # ChunkedLocalAttentionSpec (chunk tokens)
    MLA = "mla"              # MLAAttentionSpec: latent (kv_lora_rank + rope), not split by TP
    NONE = "none"            # layer holds no KV (e.g. an MLP-only layer of a hybrid)
    STATE = "state"          # MambaSpec: a fixed recurrent state per sequence (``LayerKV.state``), no tokens


@dataclass(frozen=True, slots=True)
class CompressedMLA:
    """A DeepSeek-V4 decoder layer's caches beside its sliding-window latent (vLLM deepseek_v4_attention.py).

    ``ratio`` 0: sliding-window latent only; 4: + compressed latent (1 entry per 4 tokens), the lightning
    indexer's compressed key cache and two compressor state caches; 128: + compressed latent (1 per 128
    tokens) and one compressor state cache.  ``head_dim`` / ``index_head_dim`` size the float32 compressor
    states; the latent entries are vLLM's fixed 584-byte ``fp8_ds_mla`` layout.  Priced by
    ``reportgen.estimate.compressed``.
    """

    ratio: int
    head_dim: int
    index_head_dim: int

    @property
    def entry_bytes_per_token(self) -> float:
        """Compressed-cache bytes one token of context adds, before page padding: the 584-byte latent
        entry and (ratio 4) the indexer's ``index_head_dim + index_head_dim // 128 * 4``-byte key, one
        entry per ``ratio`` tokens.  The sliding window and the compressor states are per sequence."""
        if not self.ratio:
            return 0.0
        idx = self.index_head_dim + self.index_head_dim // 128 * 4 if self.ratio == 4 else 0
        return (584 + idx) / self.ratio


@dataclass(frozen=True, slots=True)
class LayerKV:
    """KV-cache geometry of one decoder layer.

    Bytes per token on a rank: MLA -> ``max(1, num_kv_heads) * head_size_k * kv_bytes`` (head_size_k =
    kv_lora_rank + qk_rope_head_dim, head_size_v = 0; ``num_kv_heads`` = latents the layer caches per
    token: 1, LongCat-Flash's two attention sublayers 2), not divided by TP;
    otherwise ``max(1, num_kv_heads // tp) * (head_size_k + head_size_v) * kv_bytes``.
    ``window`` is the sliding-window or chunk size in tokens for SLIDING/CHUNKED.
    ``state`` is the recurrent-state geometry of a STATE layer (Mamba, Gated DeltaNet, short
    conv, lightning attention; ``arch/state.py``): bytes per *sequence*, none per token.

    DSA sparse MLA (DeepSeek-V3.2, GLM-5; vLLM deepseek_v2.py): ``sparse`` marks an MLA layer served
    by the sparse backend, whose fp8 cache is the packed 656-byte ``fp8_ds_mla`` entry;
    ``index_token_bytes`` is the lightning indexer's own key cache of that layer
    (``DeepseekV32IndexerCache``: uint8, ``index_head_dim + index_head_dim // 128 * 4`` bytes a
    token -- fp8 values plus one fp32 scale per 128).  Its dtype is fixed whatever
    ``--kv-cache-dtype`` says, and like the latent it is not split by TP.  0 = no indexer here.
    ``index_head_dim``: that indexer's key width (the config's ``index_head_dim``; 0 = no indexer here),
    which sizes its profile-run K gather (``tables.dsa_indexer_workspace``).  DeepSeek-V4 layers carry
    theirs on ``compressed`` instead.

    MiniMax-M3 sparse layers (vLLM ``vllm/models/minimax_m3``; ``families/minimax_m3.py``): a FULL layer
    (the GQA ``FullAttentionSpec`` main cache) plus ``index_dim`` -- the lightning indexer's side cache,
    one ``sparse_index_dim`` key per token (``MLAAttentionSpec(num_kv_heads=1)``, not split by TP) in
    ``--attention-config indexer_kv_dtype`` (``bytes_per_token``'s ``index_bytes``: 2 for vLLM's default
    bf16, 1 for fp8), whatever ``--kv-cache-dtype`` says.  ``kernel_block``: the only kernel block size
    the layer's backends take (the KV block size must be a multiple of it; 0 = any); ``kv_dtypes``: the
    ``--kv-cache-dtype`` values its backend takes (empty = any).

    DeepSeek-V4 (``compressed`` set, kind MLA, ``window`` = the config's sliding window): up to five
    caches per layer with their own block sizes and windows; ``bytes_per_token`` does not describe it
    -- ``reportgen.estimate.compressed`` prices it as vLLM's DeepseekV4 layout does.
    """

    kind: AttentionKind
    num_kv_heads: int = 0
    head_size_k: int = 0
    head_size_v: int = 0
    window: int | None = None
    state: StateGeometry | None = None
    sparse: bool = False
    index_token_bytes: int = 0
    compressed: CompressedMLA | None = None   # DeepSeek-V4 layer (window = its sliding window)
    index_dim: int = 0                  # MiniMax-M3: indexer keys per token, in the indexer's own dtype
    kernel_block: int = 0               # the KV block size must be a multiple of this (0 = any)
    kv_dtypes: tuple[str, ...] = ()     # --kv-cache-dtype values the layer's backend takes (empty = any)
    index_head_dim: int = 0             # DSA: the indexer's key width (index_token_bytes' fp8 values)

    def bytes_per_token(self, kv_bytes: float, tp: int = 1, index_bytes: float = 2) -> float:
        if self.kind in (AttentionKind.NONE, AttentionKind.STATE):
            return 0
        if self.compressed is not None:     # DeepSeek-V4: its fixed fp8 entries per token of context, unpadded
            return self.compressed.entry_bytes_per_token
        if self.kind is AttentionKind.MLA:
            return max(1, self.num_kv_heads) * self.head_size_k * kv_bytes + self.index_token_bytes
        return (max(1, self.num_kv_heads // tp) * (self.head_size_k + self.head_size_v) * kv_bytes
                + self.index_dim * index_bytes)


@dataclass(slots=True)
class ModelSpec:
    """A model as the estimator sees it, whatever family it came from.

    ``tensors`` is what vLLM loads for serving (text model + vision tower for
    multimodal models).  Multi-token-prediction layers are *not* in ``tensors``;
    their size is ``mtp_params``.  ``layers_kv`` has one entry per decoder layer.
    ``unsupported_reason`` set means: we do not model this architecture (never
    a wrong number) -- tensors/layers may then be empty.
    """

    model_type: str
    architectures: tuple[str, ...] = ()
    family: str = ""                     # adapter that built it (e.g. "llama", "deepseek_v3")
    dtype: str = "bfloat16"              # checkpoint / serving dtype (torch_dtype), e.g. "bfloat16", "float32"
    hidden_size: int = 0
    vocab_size: int = 0
    num_layers: int = 0                  # decoder layers (the PP unit)
    num_attention_heads: int = 0         # query heads (validity: heads % tp == 0)
    num_kv_heads: int = 0                # KV heads (validity: n_kv % tp == 0 or tp % n_kv == 0); 0 for MLA
    # per decoder layer, the head count its K/V projections (Shard.KV) are built with, when layers differ
    # (Gemma-4 attention_k_eq_v: num_global_key_value_heads on full layers); () = num_kv_heads everywhere.
    # At most two distinct counts, one of them num_kv_heads (estimate/weights.py keeps two KV classes)
    kv_heads_by_layer: tuple[int, ...] = ()
    head_dim: int = 0
    tie_word_embeddings: bool = False
    is_mla: bool = False
    num_experts: int = 0                 # routed experts per MoE layer (0 = dense)
    experts_per_token: int = 0
    # per decoder layer, the routed experts a token takes when the layers differ (Hunyuan's per-layer moe_topk
    # list); () = experts_per_token everywhere.  experts_per_token is then the largest of them (the top-k of
    # the MoE layer that peaks in vLLM's profile run), and params_active sums each layer's own share
    experts_per_token_by_layer: tuple[int, ...] = ()
    num_shared_experts: int = 0
    # vLLM's ``RoutingMethodType`` name of the routed experts (``fused_moe/config.py`` ``get_routing_method_type``
    # of the router the model file builds), where the family module works it out; "" = not worked out.  It decides
    # whether FlashInfer TRT-LLM takes unquantized experts on SM 10.x (estimate/quant/layouts.py
    # ``unquantized_moe_backend``)
    moe_routing: str = ""
    multimodal: bool = False
    max_position_embeddings: int | None = None
    rotary_dim: int = 0                  # RoPE dims per head (partial rotary, MLA qk_rope_head_dim); 0 = unknown
    # longest --max-model-len vLLM accepts (its derived max_model_len, rope scaling applied; arch/rope.py);
    # None = no limit known (vLLM then takes any value)
    max_model_len_limit: int | None = None
    # vLLM's --max-model-len when the command gives none, where it is not max_model_len_limit (a longrope config's
    # original_max_position_embeddings, 0.11.1 on: arch/rope.py default_max_model_len); None = the limit
    max_model_len_default: int | None = None
    # vLLM's rotary cos/sin cache buffers on a rank: ((rows, rotary_dim, element bytes; 0 = model dtype
    # [, rope.LengthRows when rope_length_mode is set]), ...);
    # () = none (no RoPE), None = not worked out (a hand-built spec: the estimator assumes one default cache)
    rope_caches: tuple | None = None
    # how the model code sizes ``get_rope``'s max_position: "" = max_position_embeddings (every family but
    # these); "min" / "max" = min / max of it and vLLM's max_model_len (MiniMax-Text-01 / MiniMax-M2, which copy
    # model_config.max_model_len into the config): the entries of ``rope_caches`` then carry a
    # ``rope.LengthRows`` and the weights follow --max-model-len (estimate/weights.py ``rotary_cache_bytes``)
    rope_length_mode: str = ""
    tensors: list[Tensor] = field(default_factory=list)
    layers_kv: list[LayerKV] = field(default_factory=list)
    mtp_params: int = 0                  # DeepSeek MTP layers: reported, not loaded for serving
    # the MTP layers' tensors as vLLM loads them *with* speculative decoding (method mtp): decoder layer +
    # enorm / hnorm / eh_proj / shared_head.norm, without the embedding and head the draft shares with the
    # target (estimate/specdecode.py); count = num_nextn_predict_layers.  [] = not modelled for the family
    mtp_tensors: list[Tensor] = field(default_factory=list)
    # one KV geometry per MTP layer (its attention joins the target's KV pool under speculative decoding)
    mtp_layers_kv: list[LayerKV] = field(default_factory=list)
    # width of the MTP proposer's ``hidden_states`` buffer when it is not hidden_size (DeepSeek-V4: the target's
    # pre-hc_head residual, hc_mult x hidden_size -- llm_base_proposer.py @00c4f22d); 0 = hidden_size
    mtp_hidden_states: int = 0
    # dtype vLLM gives state layers' temporal (SSM) state under --mamba-ssm-cache-dtype auto when the
    # model overrides it (nemotron_h: the config's mamba_ssm_cache_dtype, else float32); None = the
    # conv-state dtype (vLLM's auto: the model dtype).  Reported only: the family sets the same dtype
    # on each StateGeometry (``ssm_dtype``), which is what the estimator prices
    state_ssm_dtype: str | None = None
    # checkpoint parameters vLLM never instantiates (e.g. CLIP layers past LLaVA's vision_feature_layer);
    # tensors + unloaded_params == the transformers (meta-device) count
    unloaded_params: int = 0
    # tokens of the largest multimodal item vLLM profiles (its ``mm_max_toks_per_item``, e.g. one image at the
    # processor's largest size); 0 = not worked out (the encoder budget is then max_num_batched_tokens)
    mm_item_tokens: int = 0
    # the same per modality where vLLM's ``get_mm_max_tokens_per_item`` gives several ({"image": 280, "video":
    # 2496, ...}); vLLM's ``MultiModalBudget`` takes the max over the modalities whose limit is > 0, so
    # ``encoder.apply_limits`` recomputes ``mm_item_tokens`` from it; empty = one value for every modality
    mm_item_tokens_by_modality: dict[str, int] = field(default_factory=dict)
    # vLLM ``ModelConfig.is_mm_prefix_lm`` (image / video spans attended bidirectionally): vLLM forces
    # ``disable_chunked_mm_input`` and, 0.22+, raises a defaulted max_num_batched_tokens to the largest item
    # (``encoder.batched_tokens_floor``); an item still above it is refused (``encoder.unchunked_item``:
    # invalid_layout); set by ``build.mm_prefix_lm`` from the config's fields
    mm_prefix_lm: bool = False
    # a video item vLLM sizes by max_model_len (``encoder.video_item_tokens``): tokens of one step (Qwen2/2.5-VL: a
    # temporal patch of two largest frames; InternVL: one frame), the most steps a video gets, and the tokens taken
    # off max_model_len first (InternVL: one largest image while images are allowed); patch tokens 0 = no such item
    # (the family does not accept videos, it is not modelled, or ``limit_mm_per_prompt`` video = 0)
    mm_video_patch_tokens: int = 0
    mm_video_max_patches: int = 0
    mm_video_minus_tokens: int = 0
    # the vision tower's own peak in the profile run, per patch (``mm_video.TowerPeak``); None = not modelled
    mm_tower_peak: object = None
    # elements per max_num_batched_tokens token of buffers the model allocates at init in the model dtype
    # (Gemma-3n's per_layer_embeddings: layers x hidden_size_per_layer_input); priced like Qwen3-VL's deepstack
    init_buffer_per_token: int = 0
    # (index heads, top-k blocks) of an int32 top-k buffer the model allocates at init, shape
    # [max(1, heads // tp), max_num_batched_tokens (rounded up to 4), top-k]: MiniMax-M3's shared
    # topk_indices_buffer (vllm/models/minimax_m3/nvidia/model.py MiniMaxM3Model); DeepSeek-V4's
    # [max_num_batched_tokens, index_topk] one is (1, index_topk); (0, 0) = none
    index_topk_buffer: tuple[int, int] = (0, 0)
    quantization_config: dict | None = None  # raw quantization_config / compression_config, for estimate.quant
    # the quantization the model id names ("-NVFP4", "-AWQ": arch.build.quantized_by_name) when the
    # config carries no quantization_config: the as-shipped weights are then refused, not priced at the dtype
    quantization_by_name: str | None = None
    unsupported_reason: str | None = None
    # set: (first vLLM (major, minor) release that builds this config, what older releases do instead, in
    # vLLM's words) -- estimate/served.py ``spec_for_version`` refuses an older ``vllm_version`` with it
    # (exaone_moe without ``sliding_windows``: (0, 32), 0.27-0.31 raise AttributeError)
    served_from: tuple[tuple[int, int], str] | None = None
    # spec fields whose value changes from a later vLLM release on: ((first release (major, minor), field name,
    # value from that release on), ...); the fields themselves hold the oldest releases' (0.10) values, and
    # estimate/served.py ``release_values`` (called by ``spec_for_version``) gives a job's release the latest
    # entry at or below it per field.  Filled by arch/rope.py ``apply``: ``max_model_len_limit`` (yarn, 0.30),
    # ``max_model_len_default`` (longrope, 0.11) and ``rope_caches`` (dynamic, 0.22; Qwen3-VL / Qwen3.5 MRoPE, 0.32)
    from_release: tuple = ()

    # vLLM releases that serve the architecture through its Transformers backend (estimate/tf_backend.py
    # BACKEND_FROM) build the transformers class, not the native model file: ``backend_changes`` = the fields
    # that backend's build has differently beyond the rotary buffers (tf_backend.spec_for_release replaces
    # ``rope_caches`` by the transformers module's inv_freq buffers itself); ``backend_built`` = this spec already
    # is the backend's build (families/transformers_backend.py) and ``native_changes`` the fields the native
    # file of the releases before the move has differently (OLMo-1 before 0.26: a get_rope cos_sin_cache)
    backend_changes: dict = field(default_factory=dict)
    backend_built: bool = False
    native_changes: dict = field(default_factory=dict)
    # set: layouts with pp > 1 are not modelled for this model (cells ``unsupported`` with this reason)
    pp_unsupported: str | None = None
    # set: the largest tensor-parallel size the vLLM model code accepts (its MoE block raises for
    # tp > num_experts: cohere2_moe, exaone_moe); larger tp -> ``invalid_layout`` (estimate/tables.py)
    max_tp: int | None = None
    # set: layouts with tp above the number are not modelled (cells ``unsupported`` with the reason) --
    # MiMo-V2-Flash's K/V head counts differ per layer kind, weight sharding takes one per model
    tp_unsupported: tuple[int, str] | None = None
    # set: (largest tp vLLM starts with, its failure above it, a width x) -- layouts with tp above the number are
    # ``invalid_layout`` (estimate/tables.py ``model_rule``); the failure text may name ``{tp}``, ``{width}``
    # (tp * x: olmo's all-gathered k, x = head_dim) and ``{share}`` (x // tp: minimax_m2's k_norm slice,
    # x = num_key_value_heads * head_dim), filled in per layout.  olmo2 / olmo3 / olmoe / olmo_hybrid and
    # minimax_m2 (0.11 - 0.20): the whole-projection k norm cannot take a replicated KV head at
    # tp > num_key_value_heads; per vLLM release through ``from_release`` / ``backend_changes``
    tp_invalid: tuple[int, str, int] | None = None
    # set: the KV-cache dtype vLLM allocates whatever ``--kv-cache-dtype`` says ("auto": the model dtype, or a
    # checkpoint's kv_cache_scheme) -- MiMo-V2-Flash builds its Attention layers without cache_config
    kv_cache_dtype_fixed: str | None = None
    # vLLM builds every tensor outside the decoder layers (embeddings, towers, final norm, lm_head) on
    # every pipeline rank, not only the first / last (Gemma-4: no PPMissingLayer; estimate/weights.py)
    pp_every_stage: bool = False
    # set: vLLM refuses pp > 1 for this model (its class lacks SupportsPP): those layouts are invalid_layout
    pp_invalid: str | None = None
    # (layer, target layer) pairs: a layer that reads the KV cache of an earlier one (vLLM
    # ``kv_sharing_target_layer_name``); vLLM refuses to start when the two sit on different pipeline stages
    kv_sharing: tuple[tuple[int, int], ...] = ()
    notes: list[str] = field(default_factory=list)
    # safetensors header listing {name: {"shape", "dtype", "bytes", ...}} of the checkpoint, set by
    # estimate.quant.attach_checkpoint_headers (--weights checkpoint); None = config-derived weights
    checkpoint_tensors: dict | None = None

    # ---- derived counts (exact integers) ----
    def params_by_component(self) -> dict[str, int]:
        out: dict[str, int] = {c.value: 0 for c in Component}
        for t in self.tensors:
            out[t.component.value] += t.params
        return out

    @property
    def params_total(self) -> int:
        return sum(t.params for t in self.tensors)

    @property
    def params_text(self) -> int:
        return sum(t.params for t in self.tensors if t.component is not Component.VISION)

    @property
    def params_active(self) -> int:
        """Parameters touched per token: routed experts count k/E of their size."""
        total = self.params_total
        if not self.num_experts:
            return total
        routed = sum(t.params for t in self.tensors if t.component is Component.ROUTED_EXPERTS)
        if self.experts_per_token_by_layer:
            k = self.experts_per_token_by_layer
            touched = sum(t.params * k[t.layer] for t in self.tensors if t.component is Component.ROUTED_EXPERTS)
            return total - routed + touched // self.num_experts
        return total - routed + routed * self.experts_per_token // self.num_experts

    def kv_bytes_per_token(self, kv_bytes: float = 2, tp: int = 1) -> float:
        """All KV-holding layers, one token, before any sliding-window cap."""
        return sum(l.bytes_per_token(kv_bytes, tp) for l in self.layers_kv)
