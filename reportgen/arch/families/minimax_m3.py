"""MiniMax-M3 (``minimax_m3``): weights exact, KV cache as vLLM groups and pages it.

Follows vLLM ``vllm/models/minimax_m3/nvidia/model.py`` @0443308aa3e9e621c911ac891cac4f3170a83af5 (registry names
``MiniMaxM3SparseForCausalLM`` / ``MiniMaxM3SparseForConditionalGeneration``, ``vllm/models/minimax_m3/__init__.py``
@7ffc3d06) and ``common/indexer.py`` @0484480bc73081c4a5133b3cb53018323fce632d.  transformers 5.24 has no
``minimax_m3`` class; the text model of its ``minimax_m3_vl`` composite (``MiniMaxM3VLTextConfig`` /
``MiniMaxM3VLForCausalLM``, model_type ``minimax_m3_vl_text``) reads the same flat fields (``sparse_attention_config``,
``moe_layer_freq``) and is the meta-device oracle (``parse.ARCHITECTURE_FALLBACK``).

Which vLLM loads what (docs/decisions.md "MiniMax-M3 as shipped", tests/test_minimax_m3_load.py): the flat config
reportgen's fixture carries (``model_type`` ``minimax_m3``, ``MiniMaxM3ForCausalLM``, from the aiconfigurator wheel) is
loaded by no release 0.10.0 .. 0.34.0 -- neither vLLM nor transformers parses model_type ``minimax_m3`` and no registry
lists ``MiniMaxM3ForCausalLM`` -- so ``estimate/served.py`` refuses it on every release with vLLM's errors while this
module still builds its spec (weights exact).  vLLM serves MiniMax-M3 as the published checkpoint (``minimax_m3_vl``,
``MiniMaxM3SparseForConditionalGeneration``, whose text model is ``MiniMaxM3SparseForCausalLM``) from 0.24.0; this
module prices those fields under ``MiniMaxM3SparseForCausalLM`` from 0.24 (the composite -- this text stack, its
vision tower and projector -- is ``families/minimax_m3_vl.py``).

Tensors and shards (vLLM): dense layers (``sparse_attention_freq`` 0) ``MiniMaxM3Attention``: ``QKVParallelLinear``
(q COLUMN, k / v KV), ``o_proj`` ROW, per-head Gemma ``q_norm`` / ``k_norm``; sparse layers
``MiniMaxM3SparseAttention``: the same plus the lightning-indexer projections fused into
``MinimaxM3QKVParallelLinearWithIndexer`` -- ``index_q`` (``sparse_num_index_heads`` x ``sparse_index_dim``) shards
like K/V (vLLM requires ``sparse_num_index_heads == num_key_value_heads``: KV), ``index_k`` one head replicated on
every rank -- and ``index_q_norm`` / ``index_k_norm``.  MLP: ``moe_layer_freq`` 0 -> ``MiniMaxM3MLP`` of
``dense_intermediate_size``; else ``MiniMaxM3MoE``: ``GateLinear(hidden, E, params_dtype=float32)`` (4 bytes,
replicated, unquantized), ``e_score_correction_bias`` float32 ``(E,)`` (a buffer in transformers: allocated only),
FusedMoE experts of ``intermediate_size``, ``shared_experts`` MiniMaxM3MLP of ``intermediate_size x
n_shared_experts`` (transformers: ``shared_intermediate_size``; must agree); vLLM raises for tp > E (``max_tp``).

Refused where vLLM and transformers differ or vLLM raises: ``hidden_act`` other than ``swigluoai``, ``qk_norm_type``
other than ``per_head``, ``use_gemma_norm`` false, ``attention_output_gate`` true, no shared expert, index heads
other than the K/V heads or an index head size other than ``head_dim``, a tied head, ``use_routing_bias`` false
(transformers always has the correction bias).  The MTP modules (``num_nextn_predict_layers``) are not loaded for
serving and not sized here.

KV cache (read at the commits named; tests/test_arch_minimax_m3.py pins each number to the line):

* every layer keeps its GQA K/V cache: dense layers through vLLM's ``Attention``, sparse layers through
  ``MiniMaxM3SparseAttention.get_kv_cache_spec`` -- ``FullAttentionSpec(block_size=cache block size,
  num_kv_heads=max(1, kv // tp), head_size=head_size_v=head_dim, dtype=--kv-cache-dtype)``;
* a sparse layer adds its lightning indexer's side cache (``common/indexer.py`` @0484480b,
  ``MiniMaxM3IndexerCache.get_kv_cache_spec``): ``MLAAttentionSpec(num_kv_heads=1, head_size=sparse_index_dim,
  dtype=bf16 | float8_e4m3fn, cache_role=INDEXER)`` after ``--attention-config indexer_kv_dtype`` (vLLM default
  bf16; ``--kv-cache-dtype`` does not touch it), so ``sparse_index_dim x 2`` (bf16) or ``x 1`` (fp8) bytes a
  token on every rank (one head: not split by TP);
* grouping (``vllm/v1/core/kv_cache_utils.py`` @0484480b ``get_kv_cache_groups``): the specs are not one spec
  (``FullAttentionSpec.merge`` asserts no ``MLAAttentionSpec``), but all are ``FullAttentionSpec`` instances of
  one block size, so ``UniformTypeKVCacheSpecs.from_specs`` (``kv_cache_interface.py`` @0484480b,
  ``is_uniform_with_collection``: every spec an instance of the registered ``uniform_type_base_spec``, which is
  ``FullAttentionSpec`` for ``MLAAttentionSpec`` too -- ``register_all_kvcache_specs`` in
  ``single_type_kv_cache_manager.py``, read in copies only; ``get_kv_cache_spec_kind`` and the HiSparse planner
  @0484480b rely on MLA main + indexer specs sharing one such group) makes one group; ``get_kv_cache_config_from_groups``
  then takes ``num_blocks = available // sum of every cache layer's page`` and each layer's tensor is
  ``page x num_blocks`` -- the uniform-type path of ``estimate/kvcache.py`` (tokens = blocks x block size,
  ``cdiv(max_model_len, block_size)`` blocks a request);
* block size: ``MiniMaxM3SparseBackend`` and ``MiniMaxM3IndexerBackend`` list only 128-token kernel blocks
  (``get_supported_kernel_block_sizes``; ``SPARSE_BLOCK_SIZE`` = 128 = one sparse block per page;
  ``common/sparse_attention.py`` @fa109e0e, which does not override ``get_preferred_block_size``), and
  ``select_common_block_size_from_constraints`` raises "No common block size" for a KV block size that 128
  does not divide: such cells are refused (``LayerKV.kernel_block``).  Without ``--block-size`` (a job's 16)
  vLLM sets no MiniMax-M3 block size itself: no ``verify_and_update_config`` hook for it
  (``models/config.py`` ``MODELS_CONFIG_MAP``), no block-size code in ``nvidia/model.py`` @90215894, whose dense
  layers are plain ``Attention`` (FlashAttention, takes 16); ``Platform.update_block_size_for_backend`` asks only
  the *first* attention layer's backend for ``get_preferred_block_size(16)`` (``vllm/v1/attention/backend.py``
  @0014ca6b: 16 if the backend takes it, else its smallest listed size; the platform method itself is read in
  copies -- the stored vllm-project ``platforms/interface.py`` predates it).  So the shipped config (layers 0-2
  dense) stays at 16 and fails in vLLM too -- as users report from real MiniMax-M3 launches ("No common block
  size for 16", fixed by ``--block-size 128``) -- while a config whose layer 0 is sparse gets 128 from vLLM and is
  priced at 128 (``kvcache.auto_block_size``);
* ``--kv-cache-dtype``: ``MiniMaxM3SparseBackend.supported_kv_cache_dtypes`` (bfloat16, fp8, fp8_e4m3,
  fp8_e5m2; auto = the model dtype); others refused (``LayerKV.kv_dtypes``);
* non-KV memory allocated with the model: the shared ``topk_indices_buffer`` (``MiniMaxM3Model.__init__``:
  ``torch.empty(max(1, sparse_num_index_heads // tp), round_up(max_num_batched_tokens, 4), sparse_topk_blocks,
  dtype=int32)``; ``ModelSpec.index_topk_buffer``) and one rotary cache (``get_rope(head_dim,
  max_position_embeddings, {rope_theta, partial_rotary_factor})`` -- default RoPE whatever ``rope_scaling``
  says, shared by the index branch: ``max_position_embeddings x head_dim * partial_rotary_factor``).

KV refused (weights still exact) where vLLM's kernels take another shape: ``sparse_block_size`` other than
128, a sparse layer ``head_dim`` other than 128, no ``sparse_topk_blocks``, no ``partial_rotary_factor``.
Not modelled: the metadata builders' ``max_num_batched_tokens`` int32 buffers (built after the KV cache is
sized), the MSA / SM100 kernels' workspaces.
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.errors import Unsupported
from reportgen.arch.families.common import Geometry, decoder_stack, gqa_attention
from reportgen.arch.fields import Fields
from reportgen.arch.spec import AttentionKind, Component as C, LayerKV, ModelSpec, Shard as S, Tensor

SPARSE_BLOCK = 128       # common/ops/sparse_attn.py SPARSE_BLOCK_SIZE; both backends' only kernel block size
SPARSE_HEAD_SIZE = 128   # MiniMaxM3SparseBackend / MiniMaxM3IndexerBackend.get_supported_head_sizes()
# MiniMaxM3SparseBackend.supported_kv_cache_dtypes (+ auto, resolved to the bf16 / fp16 model dtype)
SPARSE_KV_DTYPES = ("auto", "bfloat16", "fp8", "fp8_e4m3", "fp8_e5m2")


def _kv_refused(why: str) -> str:
    return (f"minimax_m3: weights modelled exactly (families/minimax_m3.py), KV cache not: {why}; no KV or serving "
            "figure is given")


def _refuse(field: str, why: str) -> Unsupported:
    return Unsupported(f"minimax_m3: {field} {why}; vLLM (vllm/models/minimax_m3) and transformers would build "
                       "different models; not modelled")


def build(f: Fields, spec: ModelSpec) -> None:
    raw, obj = f.raw, f.obj
    for name, want in (("hidden_act", "swigluoai"), ("qk_norm_type", "per_head"), ("use_gemma_norm", True),
                       ("attention_output_gate", False), ("use_routing_bias", True), ("scoring_func", "sigmoid")):
        if raw.get(name) != want:
            raise _refuse(name, f"is {raw.get(name)!r}, not {want!r} (the only branch vLLM's MiniMax-M3 builds)")
    if obj.tie_word_embeddings:
        raise _refuse("tie_word_embeddings", "is true (vLLM's ParallelLMHead is its own weight)")
    hidden, n_layers, heads = obj.hidden_size, obj.num_hidden_layers, obj.num_attention_heads
    kv, hd, vocab = obj.num_key_value_heads, obj.head_dim, obj.vocab_size
    if heads % kv:
        raise f.err("num_key_value_heads", f"{kv} does not divide num_attention_heads {heads}")
    n_exp, inter = obj.num_local_experts, obj.intermediate_size
    n_shared = raw.get("n_shared_experts")
    if not isinstance(n_shared, int) or isinstance(n_shared, bool) or n_shared < 1:
        raise _refuse("n_shared_experts", f"{n_shared!r}: vLLM builds no shared expert, transformers one")
    if inter * n_shared != obj.shared_intermediate_size:
        raise _refuse("shared_intermediate_size", f"{obj.shared_intermediate_size} differs from vLLM's "
                      f"intermediate_size x n_shared_experts = {inter * n_shared}")

    # which layers are sparse / MoE: vLLM's raw lists against transformers' layer_types / mlp_layer_types
    sparse_cfg = raw.get("sparse_attention_config") or {}
    freq = sparse_cfg.get("sparse_attention_freq")
    vllm_sparse = [bool(x) for x in freq] if isinstance(freq, list) else [False] * n_layers
    if vllm_sparse != [t == "minimax_m3_sparse" for t in obj.layer_types]:
        raise _refuse("sparse_attention_config.sparse_attention_freq", "and transformers' layer_types place the "
                      "sparse layers differently")
    moe_freq = raw.get("moe_layer_freq")
    vllm_moe = [bool(x) for x in moe_freq] if isinstance(moe_freq, list) else [True] * n_layers
    if vllm_moe != [t == "sparse" for t in obj.mlp_layer_types]:
        raise _refuse("moe_layer_freq", "and transformers' mlp_layer_types place the MoE layers differently")
    idx_heads, idx_hd = obj.index_n_heads, obj.index_head_dim
    if any(vllm_sparse):
        for name, attr in (("sparse_num_index_heads", "index_n_heads"), ("sparse_index_dim", "index_head_dim")):
            if sparse_cfg.get(name) != getattr(obj, attr):
                raise _refuse(f"sparse_attention_config.{name}", f"{sparse_cfg.get(name)!r} (vLLM reads it) "
                              f"differs from transformers' {attr}={getattr(obj, attr)}")
        if idx_heads != kv or idx_hd != hd:
            raise _refuse("sparse_attention_config", f"has {idx_heads} index heads of {idx_hd}: vLLM's fused "
                          f"index projection requires the {kv} K/V heads of {hd}")
    k = obj.num_experts_per_tok
    if k > n_exp:
        raise f.err("num_experts_per_tok", f"{k} exceeds the {n_exp} routed experts")

    g = Geometry(hidden, n_layers, heads, kv, hd, vocab, False)
    dense_attn = gqa_attention(g, qk_norm="head")

    def attention(ts: list[Tensor], i: int, p: str) -> None:
        dense_attn(ts, i, p)
        if vllm_sparse[i]:
            a = f"{p}.self_attn.indexer"
            B.linear(ts, f"{a}.q_proj", hidden, idx_heads * idx_hd, S.KV, C.ATTENTION, i)
            B.linear(ts, f"{a}.k_proj", hidden, idx_hd, S.REPLICATED, C.ATTENTION, i)
            B.norm(ts, f"{a}.q_norm", idx_hd, i, comp=C.ATTENTION)
            B.norm(ts, f"{a}.k_norm", idx_hd, i, comp=C.ATTENTION)

    def mlp(ts: list[Tensor], i: int, p: str) -> None:
        if not vllm_moe[i]:
            B.gated_mlp(ts, i, f"{p}.mlp", hidden, obj.dense_intermediate_size, C.DENSE_MLP)
            return
        ts.append(Tensor(f"{p}.mlp.gate.weight", (n_exp, hidden), S.REPLICATED, C.ROUTER, i, dtype_bytes=4))
        ts.append(Tensor(f"{p}.mlp.gate.e_score_correction_bias", (n_exp,), S.REPLICATED, C.ROUTER, i,
                         allocated_only=True, dtype_bytes=4))
        B.experts(ts, i, f"{p}.mlp.experts", hidden, inter, n_exp)
        B.gated_mlp(ts, i, f"{p}.mlp.shared_experts", hidden, obj.shared_intermediate_size, C.SHARED_EXPERTS)

    refused = _kv_problem(raw, sparse_cfg, any(vllm_sparse), hd)
    decoder_stack(spec, f, g, attention=attention, mlp=mlp, tied=False,
                  layers_kv=[] if refused else _layers_kv(vllm_sparse, kv, hd, idx_hd))
    spec.num_experts, spec.experts_per_token, spec.num_shared_experts = n_exp, k, n_shared
    spec.max_tp = n_exp
    if raw.get("num_nextn_predict_layers"):
        spec.notes.append("minimax_m3: the MTP modules are not loaded for serving and their size is not modelled")
    if refused:
        spec.rope_caches = ()
        spec.unsupported_reason = _kv_refused(refused)
        return
    rot = int(hd * raw["partial_rotary_factor"])
    spec.rotary_dim = rot
    spec.rope_caches = ((obj.max_position_embeddings, rot, 0),) if obj.max_position_embeddings else ()
    if any(vllm_sparse):
        spec.index_topk_buffer = (idx_heads, sparse_cfg["sparse_topk_blocks"])


def _kv_problem(raw: dict, sparse_cfg: dict, has_sparse: bool, head_dim: int) -> str | None:
    """Why vLLM's kernels would take another cache shape than the one modelled here, else None."""
    factor = raw.get("partial_rotary_factor")
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 < factor <= 1:
        return (f"partial_rotary_factor is {factor!r}: vLLM's MiniMax-M3 attention passes config.partial_rotary_factor "
                "to get_rope, so its rotary cache is not worked out")
    if not has_sparse:
        return None
    if sparse_cfg.get("sparse_block_size") != SPARSE_BLOCK:
        return (f"sparse_attention_config.sparse_block_size is {sparse_cfg.get('sparse_block_size')!r}: vLLM's sparse "
                f"kernels page the cache in SPARSE_BLOCK_SIZE = {SPARSE_BLOCK}-token blocks, one sparse block per page")
    topk = sparse_cfg.get("sparse_topk_blocks")
    if isinstance(topk, bool) or not isinstance(topk, int) or topk < 1:
        return f"sparse_attention_config.sparse_topk_blocks is {topk!r}: vLLM sizes its topk_indices_buffer by it"
    if head_dim != SPARSE_HEAD_SIZE:
        return (f"head_dim is {head_dim}: vLLM's MiniMax-M3 sparse and indexer backends take head size "
                f"{SPARSE_HEAD_SIZE} only (get_supported_head_sizes)")
    return None


def _layers_kv(sparse: list[bool], n_kv: int, head_dim: int, index_dim: int) -> list[LayerKV]:
    """One FULL entry per layer (the GQA FullAttentionSpec); sparse layers add the indexer's side cache."""
    dense = LayerKV(AttentionKind.FULL, n_kv, head_dim, head_dim)
    idx = LayerKV(AttentionKind.FULL, n_kv, head_dim, head_dim, index_dim=index_dim, kernel_block=SPARSE_BLOCK,
                  kv_dtypes=SPARSE_KV_DTYPES)
    return [idx if s else dense for s in sparse]
