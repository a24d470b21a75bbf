"""DeepSeek Sparse Attention (DSA) models: DeepSeek-V3.2 (``deepseek_v32``) and GLM-5 (``glm_moe_dsa``).

Follows vLLM ``vllm/model_executor/models/deepseek_v2.py`` @002d6073aa034d4f5545d45021b0e56d1f3c3593
(``GlmMoeDsaForCausalLM`` and ``DeepseekV32ForCausalLM`` are its DeepseekV2 model; vLLM marks a
model DSA by ``hasattr(config, "index_topk")``) and the sparse MLA backend
``vllm/v1/attention/backends/mla/flashmla_sparse.py`` @008a0c31dc020099dd40e8a2b7d2bdb37699b047.

Layers are DeepSeek-V3 MLA + MoE layers (``families/deepseek.py``; ``q_lora_rank`` is required:
vLLM asserts it for the indexer), plus in every layer that builds one, the lightning indexer
(``Indexer``):

* ``wq_b``  q_lora_rank -> index_n_heads * index_head_dim, ``ReplicatedLinear`` (quantizable);
* ``wk`` H -> index_head_dim and ``weights_proj`` H -> index_n_heads, fused by vLLM into
  ``wk_weights_proj`` with ``disable_tp=True`` and ``quant_config=None`` (replicated, never quantized);
* ``k_norm``: LayerNorm(index_head_dim), weight + bias.

Which layers build an indexer (IndexCache, arXiv 2603.12201): vLLM skips layer ``i`` when
``max(i - index_skip_topk_offset + 1, 0) % index_topk_freq != 0`` (defaults 2 and 1: no skip) or
``index_topk_pattern[i] == "S"``; transformers' glm_moe_dsa derives ``indexer_types`` from the same
fields, deepseek_v32 gives every layer an indexer.  When the two disagree the model is refused.

KV cache per layer (vLLM's two MLAAttentionSpec layers, one block pool group):

* the MLA latent, ``kv_lora_rank + qk_rope_head_dim`` elements, not split by TP; with an fp8 KV
  dtype the sparse backend stores the 656-byte ``fp8_ds_mla`` entry (``"fp8"`` is its alias);
* the indexer key cache (``DeepseekV32IndexerCache``), only in layers with an indexer:
  ``head_dim=index_head_dim + index_head_dim // quant_block_size * 4`` with ``dtype=torch.uint8``
  and ``quant_block_size = 128`` -- 132 bytes a token for index_head_dim 128, whatever
  ``--kv-cache-dtype`` is.  An ``index_head_dim`` that is not a multiple of 128 is refused (vLLM's
  fp8 indexer cache packs whole 128-value blocks).

MTP layers (``num_nextn_predict_layers``) are not loaded for serving (vLLM skips spec-decode
layers in ``load_weights``): ``mtp_params`` only; an MTP layer always builds a full indexer.

Profile run: the indexer's K-gather workspace (max_model_len x 40 rows, sparse_attn_indexer.py @006475fe) is
priced per length by ``exprs.dsa_indexer_gib`` (``tables.dsa_indexer_workspace``, 0.17+ profiles); FlashMLA-sparse's
bf16 prefill gather (fp8_ds_mla caches only) and the freed 512 MiB indexer logits tensor are not.

Load time: FlashMLA-sparse's kept q-concat buffer (max_num_batched_tokens x heads a rank x 576 bf16, made in
``FlashMLASparseImpl.__init__``, vLLM 0.18-0.30 sdists) is priced as weights-side memory for a bf16 cache where
FlashMLA-sparse runs: SM 9.x under 0.18-0.24, SM 10.x above 16 heads a rank under 0.18-0.30
(``tables.flashmla_sparse_q_concat``, ``tables.flashmla_q_concat_on``).

Not modelled: the ``topk_indices_buffer`` (max_num_batched_tokens x index_topk int32, 64 MiB at
8192 batched tokens) that vLLM allocates with the model, and the sparse backend's 64-token kernel
block size (the estimator pages in 16-token blocks).
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.errors import Unsupported
from reportgen.arch.families.common import set_moe
from reportgen.arch.families.mla_moe import (deepseek_moe_part, dense_layers, mla_dims, mla_moe_stack, mla_part,
                                             refuse_attention_bias)
from reportgen.arch.fields import Fields
from reportgen.arch.spec import AttentionKind, Component as C, LayerKV, ModelSpec, Shard as S, Tensor

INDEXER_QUANT_BLOCK = 128     # Indexer.quant_block_size (vLLM: "TODO: get from config")
DSA_FIELDS = ("index_head_dim", "index_n_heads", "index_topk")


def indexer_token_bytes(index_head_dim: int) -> int:
    """Bytes of one token in one layer's indexer key cache (uint8: fp8 values + fp32 scale per 128)."""
    return index_head_dim + index_head_dim // INDEXER_QUANT_BLOCK * 4


def indexer_layers(f: Fields, n_layers: int) -> list[bool]:
    """Per layer: True = builds an indexer (vLLM's IndexCache rule, checked against transformers)."""
    freq = f.raw.get("index_topk_freq", 1)
    pattern = f.raw.get("index_topk_pattern")
    offset = f.raw.get("index_skip_topk_offset", 2)
    for name, v in (("index_topk_freq", freq), ("index_skip_topk_offset", offset)):
        if isinstance(v, bool) or not isinstance(v, int) or v < (1 if name == "index_topk_freq" else 0):
            raise f.err(name, f"must be a non-negative integer (frequency >= 1), got {v!r}")
    if pattern is None:
        vllm = [max(i - offset + 1, 0) % freq == 0 for i in range(n_layers)]
    else:
        if not isinstance(pattern, (str, list)):
            raise f.err("index_topk_pattern", "must be a string or list of F / S")
        vllm = [not (i < len(pattern) and pattern[i] == "S") for i in range(n_layers)]
    if f.model_type == "glm_moe_dsa":
        types = f.str_list("indexer_types") or []
        hf = [t != "shared" for t in types]
    else:
        hf = [True] * n_layers          # transformers' DeepseekV32Attention always builds its indexer
    if hf != vllm:
        raise Unsupported(f"{f.model_type}: vLLM (index_topk_freq / index_topk_pattern) and transformers "
                          "(indexer_types) disagree on which layers have a lightning indexer")
    return vllm


def _indexer(ts: list[Tensor], i: int, prefix: str, hidden: int, q_lora: int, n_idx: int, idx_dim: int) -> None:
    a = f"{prefix}.indexer"
    B.linear(ts, f"{a}.wq_b", q_lora, n_idx * idx_dim, S.REPLICATED, C.ATTENTION, i)
    B.linear(ts, f"{a}.wk", hidden, idx_dim, S.REPLICATED, C.ATTENTION, i, quantizable=False)
    B.linear(ts, f"{a}.weights_proj", hidden, n_idx, S.REPLICATED, C.ATTENTION, i, quantizable=False)
    B.norm(ts, f"{a}.k_norm", idx_dim, i, comp=C.ATTENTION, bias=True)


def build(f: Fields, spec: ModelSpec) -> None:
    refuse_attention_bias(f)
    d = mla_dims(f, q_lora_required="is null; the DSA indexer reads the query latent (vLLM asserts q_lora_rank)")
    n_idx = f.int("index_n_heads")
    idx_dim = f.int("index_head_dim")
    f.int("index_topk")
    if idx_dim % INDEXER_QUANT_BLOCK:
        # vLLM 0.22.0 sdist: deepseek_v2.py l. 648 fixes quant_block_size = 128 and quantizes the indexer's q with
        # per_token_group_quant_fp8, which asserts ``x.shape[-1] % group_size == 0`` (fp8_utils.py l. 539)
        raise Unsupported(f"{f.model_type}: index_head_dim {idx_dim} is not a multiple of vLLM's "
                          f"{INDEXER_QUANT_BLOCK}-value fp8 indexer-cache block: vLLM's per_token_group_quant_fp8 "
                          f"asserts 'the last dimension of `x` {idx_dim} must be divisible by `group_size` "
                          f"{INDEXER_QUANT_BLOCK}' in the indexer's forward (the start fails in the profile run)")
    if d.rope > idx_dim:
        raise f.err("qk_rope_head_dim", f"{d.rope} exceeds index_head_dim {idx_dim} (the indexer ropes its first dims)")
    n_exp = f.int("n_routed_experts")
    n_shared = f.int("n_shared_experts", 0, lo=0)
    moe_inter = f.int("moe_intermediate_size")
    inter = f.int("intermediate_size")
    dense = dense_layers(f, d.n_layers) + [d.n_layers < (f.raw.get("first_k_dense_replace") or 0)]   # + MTP
    has_idx = indexer_layers(f, d.n_layers) + [True]          # an MTP layer always builds a full indexer
    k = set_moe(spec, f, n_exp, shared=n_shared)

    def indexer(ts: list[Tensor], i: int, p: str) -> None:
        if has_idx[i]:
            _indexer(ts, i, f"{p}.self_attn", d.hidden, d.q_lora, n_idx, idx_dim)

    mlp = deepseek_moe_part(d.hidden, dense, inter=inter, n_exp=n_exp, moe_inter=moe_inter, n_shared=n_shared)
    ib = indexer_token_bytes(idx_dim)
    kv = [LayerKV(AttentionKind.MLA, 1, d.kv_lora + d.rope, 0, sparse=True, index_token_bytes=ib if has_idx[i] else 0,
                  index_head_dim=idx_dim if has_idx[i] else 0)
          for i in range(d.n_layers)]
    mla_moe_stack(spec, f, d, attention=mla_part(d, extra=indexer), mlp=mlp, k=k, layers_kv=kv)
