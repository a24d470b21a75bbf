"""DeepSeek-V4 (``deepseek_v4``: V4-Flash, V4-Pro): the weights, exact; the KV layout, exact; servable (fp8 KV).

Follows vLLM ``vllm/model_executor/models/deepseek_v4.py`` @023da1fc828eb07787cf0734a1ba32f0a0f11887,
``vllm/model_executor/layers/deepseek_v4_attention.py`` @0a291a2e1074b13971361df76245548a4ea4a77d and
``vllm/model_executor/layers/deepseek_compressor.py`` @0de10a276eced6036e9752a223cba53c996d31cd, checked
parameter for parameter against transformers 5.24's native ``DeepseekV4ForCausalLM`` on the meta device
(``tests/test_oracle_flagships_dsv4.py``).  Tensor names are vLLM's; what each one is in transformers:

Per decoder layer (``compress_ratio`` = vLLM's ``config.compress_ratios[i]``: 0 sliding-only, 4 CSA,
128 HCA; transformers' ``layer_types`` sliding_attention / compressed_sparse_attention /
heavily_compressed_attention):

* ``attn.fused_wqa_wkv`` = ``q_a_proj`` (H -> q_lora) + ``kv_proj`` (H -> head_dim): ``MergedColumn
  ParallelLinear(disable_tp=True)``, replicated, quantizable; ``q_norm`` (q_lora) = ``q_a_norm``;
  ``kv_norm`` (head_dim).  One shared-KV MQA head: the latent *is* the K and V of every head.
* ``attn.wq_b`` = ``q_b_proj`` (q_lora -> heads * head_dim): column.
* grouped output projection: ``wo_a`` = ``o_a_proj`` (``o_groups * o_lora_rank`` x ``heads * head_dim /
  o_groups``): ``ColumnParallelLinear`` (each rank ``o_groups / tp`` groups); ``wo_b`` = ``o_b_proj``
  (``o_groups * o_lora_rank`` -> H): row.
* ``attn.attn_sink`` = ``sinks`` (heads,), float32; split by heads (vLLM pads each rank's slice to
  ``max(heads / tp, 64)`` entries -- at most 256 bytes a layer, not modelled).
* compressor (ratio > 1; ``coff = 2`` when ratio is 4, else 1): ``fused_wkv_wgate`` = ``kv_proj`` +
  ``gate_proj`` (H -> coff * head_dim each), replicated and *never quantized* (``quant_config=None``);
  ``ape`` = ``position_bias`` (ratio, coff * head_dim), float32; ``norm`` = ``kv_norm`` (head_dim).
* lightning indexer (ratio 4 only -- vLLM: ``compress_ratio == 4``; transformers: in every CSA
  compressor): ``wq_b`` = ``q_b_proj`` (q_lora -> index_n_heads * index_head_dim), replicated,
  quantizable; ``weights_proj`` = ``scorer.weights_proj`` (H -> index_n_heads), replicated, not
  quantized; its own compressor at ``index_head_dim`` with coff 2.  vLLM also builds an indexer
  ``k_norm`` LayerNorm(index_head_dim) that the transformers model (and the forward) does not have:
  ``allocated_only``.
* mHC hyper-connections: ``hc_{attn,ffn}_fn`` ((2 + hc_mult) * hc_mult, hc_mult * H), ``_base``
  ((2 + hc_mult) * hc_mult), ``_scale`` (3) = ``{attn,ffn}_hc.fn / base / scale``: float32, replicated
  (component ``other``).
* ``attn_norm`` = ``input_layernorm``; ``ffn.norm_gate.norm`` = ``post_attention_layernorm``.
* MoE: ``ffn.norm_gate.gate`` (E, H) router -- a hash-routed layer (transformers ``hash_moe``) has the
  same learned gate; its ``tid2eid`` table (vocab x top-k int32) is a buffer in transformers and a
  non-trainable parameter in vLLM, like the ``e_score_correction_bias`` of the other layers: neither is
  a model parameter and neither is priced here (~3 MB per hash layer at V4-Flash's vocabulary);
  routed experts (FusedMoE ``w13`` / ``w2``), one shared expert (``moe_intermediate_size`` wide,
  merged gate_up column, down row).

Model: embedding, ``hc_head_fn`` (hc_mult, hc_mult * H), ``hc_head_base`` (hc_mult), ``hc_head_scale``
(1) (float32, ``other``), final norm, ``lm_head`` (``ParallelLMHead``: vLLM never ties it).

MTP (``num_nextn_predict_layers``): plain serving skips ``mtp.`` and transformers does not build it; with
``--speculative-config '{"method": "mtp", ...}'`` vLLM loads it as ``DeepSeekV4MTP``
(``vllm/model_executor/models/deepseek_v4_mtp.py`` @023da1fc), built here into ``spec.mtp_tensors`` /
``mtp_layers_kv`` (priced by estimate/specdecode.py).  Per MTP layer ``i`` (prefix ``model.layers.{num_hidden_layers
+ i}``): ``mtp_block`` = a ``DeepseekV4DecoderLayer`` built by the same parts as the stack's -- at compress ratio 1,
i.e. sliding window only, no compressor and no indexer (``DeepseekV4Attention``: ``layer_id >= num_hidden_layers``
-> ``compress_ratio = 1``; V4-Flash's 44th ``compress_ratios`` entry, 0, is never read), a non-hash MoE -- plus
``enorm`` / ``hnorm`` / ``shared_head.norm`` (RMSNorm(H)), ``e_proj`` / ``h_proj`` (``ReplicatedLinear(H, H)`` with
the quant config: fp8 block, replicated) and ``hc_head_fn`` / ``_base`` / ``_scale`` (float32, (hc, hc x H), (hc,),
(1,)).  Its ``SharedHead.head`` and ``embed_tokens`` are the target's (``_maybe_share_lm_head`` /
``_maybe_share_embeddings``, llm_base_proposer.py @00c4f22d) and the V4-Flash checkpoint stores neither for the
MTP layer (vLLM logs "MTP draft model loaded: 39 params": the tensors here, their scales and
``e_score_correction_bias``), so ``mtp_params`` is the layer as built: 6,610,048,635 on V4-Flash
(tests/test_specdecode_dsv4.py; the target plus it is the 148.66 GiB "Checkpoint size" vLLM logs, within 0.03 GiB).
Its own ``topk_indices_buffer`` is replaced by the target's at load (not priced); its ``hidden_states`` proposer
buffer is ``hc_mult x H`` wide (``spec.mtp_hidden_states``).  KV: one sliding-window latent per MTP layer
(``DeepseekV4SWACache``), which joins the target's sliding groups.  An MTP layer whose rope theta no target layer
uses (a config without sliding layers) would add a rotary cache: not priced.

Refused (transformers and vLLM would build different models, or vLLM cannot run it): compress rates
other than 4 / 128 (vLLM's compressor state cache asserts them and keys the overlap on ratio 4),
``n_shared_experts`` other than 1 (transformers always builds one ``moe_intermediate_size`` shared MLP,
vLLM ``moe_intermediate_size * n_shared_experts`` or none), ``tie_word_embeddings``, ``mlp_bias``
(vLLM's MLPs have no biases), ``hidden_act`` other than silu (vLLM raises), a raw ``compress_ratios``
that disagrees with ``layer_types``.

Non-KV memory vLLM allocates with the model (priced): the mHC / ``ape`` / ``attn_sink`` tensors are float32
parameters in vLLM (``Tensor.dtype_bytes`` 4); ``DeepseekV4Model.__init__`` reserves ``topk_indices_buffer =
torch.empty(max_num_batched_tokens, index_topk, dtype=int32)`` on every rank (``ModelSpec.index_topk_buffer`` =
(1, index_topk): 2 KiB per batched token at V4-Flash's 512, in the activation figure); the rotary caches
(``rope_caches`` below).  Not priced: the ``attn_sink`` padding to 64 heads a rank (at most 256 B a layer).  With these, row D01 (vllm#44376) predicts 5.58 GiB of KV memory
against the logged 5.44 (+2.6 %; +13.6 % before) and a largest fitting length of 13,808 against 13,528.

Layout rules: ``heads % tp`` (vLLM ``assert self.n_heads % tp_size == 0``, the generic rule);
``tp > o_groups`` is ``unsupported`` (``spec.tp_unsupported``: vLLM's ``n_local_groups = o_groups // tp``
is then 0, deepseek_v4.py @023da1fc -- what it does then was not read).  Not checked: at most 128 heads per
rank (FlashMLA pads to 64 / 128; V4-Flash has 64 heads, never more per rank), ``n_routed_experts % tp`` in the
FusedMoE path without EP.

KV cache: ``layers_kv`` carries each layer's geometry (``LayerKV(MLA, window=sliding_window,
compressed=CompressedMLA(ratio, head_dim, index_head_dim))``, the ratio-4 layers' indexer key bytes in
``index_token_bytes``), which ``reportgen.estimate.compressed`` lays out as vLLM does (its docstring
names the vLLM lines and commits: deepseek_v4_attention.py @0a291a2e, sparse_swa.py @72ecd68b,
deepseek_compressor.py @bbd10241, kv_cache_interface.py @7a24fbb3, kv_cache_planning.py @fc23e695), and
``kvcache.kv_groups`` hands to the matrix (three sliding kinds, block 256, "GPU KV cache size" =
concurrency x max_model_len, the max_model_len-dependent prefill gather workspace: ``exprs.compressed_lens``).
fp8 KV only: any other ``kv_cache_dtype`` is ``invalid_layout`` with vLLM's assert (``auto`` included: vLLM
does not turn ``auto`` into fp8 for this model -- ``DeepseekV4ForCausalLMConfig`` in models/config.py only renames
the quant method, and started without ``--kv-cache-dtype fp8`` vLLM fails with "DeepseekV4 only supports fp8
kv-cache format for now, got auto").  A job serves it at fp8 beside ``auto`` models with a per-model KV axis
(``models = [{id = ..., kv_cache_dtype = ["fp8"]}]``, reportgen/job.py; the bundled default job does).

Checkpoint bytes: vLLM's ``DeepseekV4FP8Config`` (deepseek_v4.py @023da1fc) serves the fp8 block checkpoint
with MXFP4 routed experts (``Mxfp4MoEMethod``) unless ``expert_dtype`` is "fp8" (missing = "fp4"); the adapter
copies ``expert_dtype`` into ``quantization_config`` for ``estimate.quant`` (scheme ``fp8-block128+mxfp4-experts``).

Rotary caches (``rope_caches``): one ``get_rope`` module per distinct theta (``rope_theta`` on sliding layers,
``compress_rope_theta`` on compressed ones), deepseek_yarn over ``original_max_position_embeddings x factor``
rows x ``qk_rope_head_dim``, float32 (``DeepseekV4ScalingRotaryEmbedding``; see ``rope_caches``): 2 x 256 MiB
on V4-Flash (the MTP layer's sliding theta is already among them).
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.errors import Unsupported
from reportgen.arch.families.common import decoder_stack, geometry, set_moe
from reportgen.arch.fields import Fields
from reportgen.arch.spec import AttentionKind, CompressedMLA, Component as C, LayerKV, ModelSpec, Shard as S, Tensor

CSA, HCA, SWA = "compressed_sparse_attention", "heavily_compressed_attention", "sliding_attention"
VLLM_RATES = {CSA: 4, HCA: 128}       # CompressorStateCache: ``assert compress_ratio in [4, 128]``
FIELDS = ("index_head_dim", "index_n_heads", "index_topk")

def layer_ratios(f: Fields, n_layers: int) -> list[int]:
    """Per layer vLLM's compress ratio (0 = sliding window only), checked against transformers' layer_types."""
    types = f.str_list("layer_types")
    if types is None or len(types) != n_layers:
        raise f.err("layer_types", f"must list the {n_layers} layers' attention types")
    rates = f.get("compress_rates") or {}
    for kind, want in VLLM_RATES.items():
        if rates.get(kind, want) != want:
            raise Unsupported(f"deepseek_v4 with compress_rates[{kind!r}] = {rates.get(kind)!r}: vLLM's "
                              f"compressor serves ratio {want} only (its state cache asserts 4 or 128)")
    ratios = [0 if t == SWA else VLLM_RATES[t] for t in types]
    raw = f.raw.get("compress_ratios")
    if raw is not None:
        if not isinstance(raw, list) or len(raw) < n_layers:
            raise f.err("compress_ratios", f"must list at least the {n_layers} layers' ratios")
        if list(raw[:n_layers]) != ratios:
            raise Unsupported("deepseek_v4: compress_ratios (vLLM) and layer_types (transformers) disagree")
    return ratios


def _compressor(ts: list[Tensor], i: int, p: str, hidden: int, head: int, ratio: int) -> None:
    coff = 2 if ratio == 4 else 1
    for part in ("wkv", "wgate"):
        B.linear(ts, f"{p}.fused_wkv_wgate[{part}]", hidden, coff * head, S.REPLICATED, C.ATTENTION, i,
                 quantizable=False)
    ts.append(Tensor(f"{p}.ape", (ratio, coff * head), S.REPLICATED, C.ATTENTION, i, dtype_bytes=4))   # float32
    B.norm(ts, f"{p}.norm", head, i, comp=C.ATTENTION)


def _hc(ts: list[Tensor], i: int | None, p: str, hc: int, hidden: int, mix: int, n_scale: int) -> None:
    # vLLM builds the mHC tensors as nn.Parameter(torch.empty(..., dtype=torch.float32)) (deepseek_v4.py @023da1fc
    # DeepseekV4DecoderLayer / DeepseekV4Model): 4 bytes whatever the checkpoint or --dtype
    ts.append(Tensor(f"{p}_fn", (mix, hc * hidden), S.REPLICATED, C.OTHER, i, dtype_bytes=4))
    ts.append(Tensor(f"{p}_base", (mix,), S.REPLICATED, C.OTHER, i, dtype_bytes=4))
    ts.append(Tensor(f"{p}_scale", (n_scale,), S.REPLICATED, C.OTHER, i, dtype_bytes=4))


def rope_caches(f: Fields, ratios: list[int], rope_dim: int, max_pos: int | None) -> tuple[tuple[int, int, int], ...]:
    """vLLM's rotary caches for DeepSeek-V4: one ``get_rope`` module per distinct theta.

    ``DeepseekV4Attention.__init__`` (deepseek_v4.py @023da1fc) sets ``rope_theta`` to ``compress_rope_theta``
    on layers with ``max(1, compress_ratio) > 1`` and to ``rope_theta`` on the others, turns a non-default
    rope type into ``deepseek_yarn`` and adds ``is_deepseek_v4`` / ``rope_dim`` (= qk_rope_head_dim); the
    indexer reuses the layer's module.  ``get_rope`` memoises on the parameters, so there are as many
    modules as distinct thetas among the layers.  A deepseek_yarn module is
    ``DeepseekV4ScalingRotaryEmbedding``: the base ``DeepseekScalingRotaryEmbedding`` cache of
    ``original_max_position_embeddings x factor`` rows x rotary_dim (rotary_embedding/deepseek_scaling_rope.py
    @00d678e1) kept in float32 (``register_buffer("cos_sin_cache", cache_fp32)`` -- the V4 subclass is read in
    copies of that file, it is not at a stored vllm-project commit); a default rope type is the plain
    ``RotaryEmbedding`` of max_position rows in the model dtype.  V4-Flash: 2 x 1,048,576 x 64 x 4 B = 512 MiB.
    """
    from collections.abc import Mapping

    from reportgen.arch.rope import _normalise, cache_rows

    if not max_pos or not rope_dim:
        return ()
    # vLLM reads one flat ``config.rope_parameters`` (the checkpoint's ``rope_scaling``: yarn x16 on V4-Flash) for
    # both thetas; transformers 5.24 splits it into "main" (default) and "compress" (yarn) sets, which vLLM's
    # model code cannot index (``config.rope_parameters["rope_type"]``): a nested form is read as its
    # non-default set, the one the flat form would carry
    raw = f.raw.get("rope_parameters") or f.raw.get("rope_scaling") or {}
    if isinstance(raw, Mapping) and raw and all(isinstance(v, Mapping) for v in raw.values()):
        raw = next((v for v in raw.values() if (v.get("rope_type") or v.get("type") or "default") != "default"),
                   next(iter(raw.values())))
    rp = _normalise(raw if isinstance(raw, Mapping) else {})
    yarn = rp["rope_type"] != "default"
    if yarn:
        rp["rope_type"] = "deepseek_yarn"
    thetas = {f.get("compress_rope_theta") if r > 1 else f.get("rope_theta") for r in ratios}
    return tuple((cache_rows(rp, max_pos), rope_dim, 4 if yarn else 0) for _ in sorted(thetas, key=str))


def build(f: Fields, spec: ModelSpec) -> None:
    g = geometry(f, kv_heads=False)      # one shared latent head whatever num_key_value_heads says
    hidden, heads, head = g.hidden, g.n_heads, g.head_dim
    rope = f.int("qk_rope_head_dim")
    q_lora = f.int("q_lora_rank")
    groups = f.int("o_groups")
    o_lora = f.int("o_lora_rank")
    hc = f.int("hc_mult")
    n_idx = f.int("index_n_heads")
    idx_dim = f.int("index_head_dim")
    n_exp = f.int("n_routed_experts")
    moe_inter = f.int("moe_intermediate_size")
    if heads % groups:
        raise f.err("o_groups", f"{groups} does not divide num_attention_heads {heads}")
    if rope > head:
        raise f.err("qk_rope_head_dim", f"{rope} exceeds head_dim {head}")
    if g.tie:
        raise Unsupported("deepseek_v4 with tie_word_embeddings: vLLM's lm_head is its own ParallelLMHead")
    if f.flag("mlp_bias"):
        raise Unsupported("deepseek_v4 with mlp_bias: vLLM's MLPs have no biases (transformers' have)")
    if f.get("hidden_act", "silu") != "silu":
        raise Unsupported(f"deepseek_v4 with hidden_act {f.get('hidden_act')!r}: vLLM's DeepseekV4MLP "
                          "supports silu only")
    n_shared = f.raw.get("n_shared_experts", 1)
    if n_shared != 1:
        raise Unsupported(f"deepseek_v4 with n_shared_experts {n_shared!r}: transformers always builds one "
                          "moe_intermediate_size shared expert, vLLM moe_intermediate_size x n_shared_experts")
    ratios = layer_ratios(f, g.n_layers)
    k = set_moe(spec, f, n_exp, shared=1)
    mix = (2 + hc) * hc

    def ratio(i: int) -> int:
        # DeepseekV4Attention (deepseek_v4.py @023da1fc): a layer index >= num_hidden_layers (the MTP layer) gets
        # compress_ratio 1 -- sliding window only -- whatever compress_ratios lists past the decoder layers
        return ratios[i] if i < len(ratios) else 0

    def attention(ts: list[Tensor], i: int, p: str) -> None:
        a = f"{p}.attn"
        B.linear(ts, f"{a}.fused_wqa_wkv[wq_a]", hidden, q_lora, S.REPLICATED, C.ATTENTION, i)
        B.linear(ts, f"{a}.fused_wqa_wkv[wkv]", hidden, head, S.REPLICATED, C.ATTENTION, i)
        B.norm(ts, f"{a}.q_norm", q_lora, i, comp=C.ATTENTION)
        B.linear(ts, f"{a}.wq_b", q_lora, heads * head, S.COLUMN, C.ATTENTION, i)
        B.norm(ts, f"{a}.kv_norm", head, i, comp=C.ATTENTION)
        B.linear(ts, f"{a}.wo_a", heads * head // groups, groups * o_lora, S.COLUMN, C.ATTENTION, i)
        B.linear(ts, f"{a}.wo_b", groups * o_lora, hidden, S.ROW, C.ATTENTION, i)
        ts.append(Tensor(f"{a}.attn_sink", (heads,), S.COLUMN, C.ATTENTION, i, dtype_bytes=4))   # float32
        r = ratio(i)
        if r:
            _compressor(ts, i, f"{a}.mla_attn.compressor", hidden, head, r)
        if r == 4:
            x = f"{a}.indexer"
            B.linear(ts, f"{x}.wq_b", q_lora, n_idx * idx_dim, S.REPLICATED, C.ATTENTION, i)
            B.linear(ts, f"{x}.weights_proj", hidden, n_idx, S.REPLICATED, C.ATTENTION, i, quantizable=False)
            for part in ("weight", "bias"):
                ts.append(Tensor(f"{x}.k_norm.{part}", (idx_dim,), S.REPLICATED, C.ATTENTION, i,
                                 allocated_only=True))
            _compressor(ts, i, f"{x}.compressor", hidden, idx_dim, r)
        _hc(ts, i, f"{p}.hc_attn", hc, hidden, mix, 3)

    def moe(ts: list[Tensor], i: int, p: str) -> None:
        B.router(ts, i, f"{p}.ffn.norm_gate.gate", hidden, n_exp)
        B.experts(ts, i, f"{p}.ffn.experts", hidden, moe_inter, n_exp)
        B.gated_mlp(ts, i, f"{p}.ffn.shared_experts", hidden, moe_inter, C.SHARED_EXPERTS, fused=True)
        _hc(ts, i, f"{p}.hc_ffn", hc, hidden, mix, 3)

    window = f.int("sliding_window")

    def layer_kv(r: int) -> LayerKV:
        return LayerKV(AttentionKind.MLA, 1, head, 0, window, sparse=True,
                       index_token_bytes=(idx_dim + idx_dim // 128 * 4) if r == 4 else 0,
                       compressed=CompressedMLA(r, head, idx_dim))

    norms = ("attn_norm", "ffn.norm_gate.norm")
    decoder_stack(spec, f, g, attention=attention, mlp=moe, norms=norms, tied=False,
                  layers_kv=[layer_kv(r) for r in ratios])   # priced by estimate/compressed.py
    _hc(spec.tensors, None, "model.hc_head", hc, hidden, hc, 1)
    spec.num_kv_heads, spec.is_mla, spec.rotary_dim, spec.experts_per_token = 0, True, rope, k
    n_mtp = f.raw.get("num_nextn_predict_layers") or 0
    for j in range(n_mtp):
        # DeepSeekV4MultiTokenPredictorLayer (deepseek_v4_mtp.py @023da1fc), prefix model.layers.{n_layers + j}
        i, p = g.n_layers + j, f"model.layers.{g.n_layers + j}"
        mtp: list[Tensor] = []
        B.norm(mtp, f"{p}.mtp_block.{norms[0]}", hidden, i)            # mtp_block = DeepseekV4DecoderLayer
        attention(mtp, i, f"{p}.mtp_block")
        B.norm(mtp, f"{p}.mtp_block.{norms[1]}", hidden, i)
        moe(mtp, i, f"{p}.mtp_block")
        for name in ("enorm", "hnorm", "shared_head.norm"):
            B.norm(mtp, f"{p}.{name}", hidden, i)
        for name in ("e_proj", "h_proj"):                                # ReplicatedLinear(H, H, quant_config)
            B.linear(mtp, f"{p}.{name}", hidden, hidden, S.REPLICATED, C.OTHER, i)
        _hc(mtp, i, f"{p}.hc_head", hc, hidden, hc, 1)                     # float32 (hc, hc x H), (hc,), (1,)
        spec.mtp_tensors += mtp
        spec.mtp_layers_kv.append(layer_kv(ratio(i)))
    # the checkpoint's MTP layer holds no embedding or head (vLLM logs "MTP draft model loaded: 39 params" = the
    # tensors above; the draft shares the target's embed_tokens / lm_head): mtp_params is the layer as built
    spec.mtp_params = sum(t.params for t in spec.mtp_tensors)
    spec.mtp_hidden_states = hc * hidden if n_mtp else 0
    if spec.quantization_config and str(spec.quantization_config.get("quant_method", "")).lower() == "fp8":
        # vLLM's DeepseekV4FP8Config (deepseek_v4.py @023da1fc): fp8 block linears, and the routed experts
        # MXFP4 (Mxfp4MoEMethod) unless the config's ``expert_dtype`` is "fp8" -- missing means "fp4"
        spec.quantization_config = {**spec.quantization_config,
                                    "expert_dtype": str(f.raw.get("expert_dtype") or "fp4")}
    # n_local_groups = o_groups // tp (deepseek_v4.py @023da1fc) is 0 beyond o_groups
    spec.tp_unsupported = (groups, f"deepseek_v4 at tp > o_groups ({groups}): vLLM's DeepseekV4Attention then has "
                                   "n_local_groups = o_groups // tp = 0 (deepseek_v4.py @023da1fc); not modelled")
    spec.rope_caches = rope_caches(f, ratios, rope, spec.max_position_embeddings)
    # DeepseekV4Model.__init__ (deepseek_v4.py @023da1fc): "Reserved topk indices buffer for all Indexer layers to
    # reuse" = torch.empty(max_num_batched_tokens, index_topk, dtype=int32) on every rank, whatever tp
    spec.index_topk_buffer = (1, f.int("index_topk"))
