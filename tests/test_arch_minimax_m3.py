"""MiniMax-M3 (``minimax_m3``): shard classes, refusals and the KV cache, each pinned to the vLLM source line it
follows -- ``vllm/models/minimax_m3/nvidia/model.py`` @0443308a, ``common/indexer.py`` @0484480b,
``common/sparse_attention.py`` @0443308a, ``vllm/v1/kv_cache_interface.py`` and ``vllm/v1/core/kv_cache_utils.py``
@0484480b (read through the search index).  Totals against the meta device: tests/test_oracle_minimax_m3.py."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from reportgen.arch import build_spec
from reportgen.arch.spec import AttentionKind, Shard as S
from reportgen.estimate.kvcache import UnsupportedKvDtype, kv_bytes_per_token, kv_groups


def _t(spec, name):
    return next(t for t in spec.tensors if t.name == name)


M3 = json.loads((Path(__file__).parent / "data/configs_2026/MiniMaxAI--MiniMax-M3.json").read_text())
# The fixture as shipped (model_type minimax_m3, MiniMaxM3ForCausalLM) is a config no vLLM release loads
# (tests/test_minimax_m3_load.py): the cells below price the same fields as the text model vLLM builds for the
# published MiniMaxAI/MiniMax-M3 checkpoint -- MiniMaxM3SparseForCausalLM (vllm 0.24.0 sdist registry.py:163-166),
# transformers' minimax_m3_vl_text config -- so the KV math they pin is the served model's.
M3_SERVED = {**M3, "model_type": "minimax_m3_vl_text", "architectures": ["MiniMaxM3SparseForCausalLM"]}


def test_minimax_m3_kv_layers_rope_and_topk_buffer():
    spec = build_spec(M3)
    assert spec.unsupported_reason is None and spec.params_total == 426_174_565_632
    # every layer: the GQA FullAttentionSpec (num_kv_heads=max(1, 4 // tp), head_size = head_size_v = 128);
    # sparse_attention_freq 1 (layers 3..59) adds the MiniMaxM3IndexerCache MLAAttentionSpec(head_size=128)
    assert len(spec.layers_kv) == 60 and all(l.kind is AttentionKind.FULL and l.num_kv_heads == 4
                                             and l.head_size_k == l.head_size_v == 128 for l in spec.layers_kv)
    assert [l.index_dim for l in spec.layers_kv] == [0] * 3 + [128] * 57
    # get_supported_kernel_block_sizes() -> [128] on both MiniMaxM3SparseBackend and MiniMaxM3IndexerBackend
    assert {l.kernel_block for l in spec.layers_kv[3:]} == {128} and spec.layers_kv[0].kernel_block == 0
    # get_rope(head_dim, max_position=max_position_embeddings, {rope_theta, partial_rotary_factor}): one default
    # cache of 1,048,576 rows x int(128 * 0.5) dims, shared by the index branch (index_rotary_emb = rotary_emb)
    assert spec.rope_caches == ((1_048_576, 64, 0),)
    # MiniMaxM3Model: torch.empty(max(1, sparse_num_index_heads // tp), padded tokens, sparse_topk_blocks, int32)
    assert spec.index_topk_buffer == (4, 16)


# hand arithmetic, per token on one rank: main cache max(1, 4 // tp) x (128 + 128) x kv bytes on all 60 layers;
# index cache 128 keys x (2 bf16 | 1 fp8) on the 57 sparse layers, not split by TP (MLAAttentionSpec, 1 head)
@pytest.mark.parametrize("tp, kv_dtype, indexer, expect", [
    (1, "auto", "bf16", 60 * 4 * 256 * 2 + 57 * 128 * 2),          # 122,880 + 14,592 = 137,472
    (1, "auto", "fp8", 60 * 4 * 256 * 2 + 57 * 128 * 1),           # 130,176
    (4, "auto", "bf16", 60 * 1 * 256 * 2 + 57 * 128 * 2),          # 45,312
    (8, "auto", "bf16", 60 * 1 * 256 * 2 + 57 * 128 * 2),          # tp 8 > 4 heads: one replicated head
    (8, "fp8", "bf16", 60 * 1 * 256 * 1 + 57 * 128 * 2),           # --kv-cache-dtype leaves the index cache bf16
    (8, "fp8_e5m2", "fp8", 60 * 1 * 256 * 1 + 57 * 128 * 1),       # 22,656
])
def test_minimax_m3_bytes_per_token_hand_arithmetic(tp, kv_dtype, indexer, expect):
    spec = build_spec(M3)
    assert kv_bytes_per_token(spec, kv_dtype, 2, tp, indexer_kv_dtype=indexer) == expect
    g = kv_groups(spec, tp, 1, kv_dtype, 1 if kv_dtype.startswith("fp8") else 2, 128, indexer_kv_dtype=indexer)
    assert g.stage_token_bytes == (expect,)


def test_minimax_m3_one_uniform_type_group_block_math():
    # kv_cache_utils.get_kv_cache_groups @0484480b: not is_kv_cache_spec_uniform (FullAttentionSpec.merge asserts no
    # MLAAttentionSpec), UniformTypeKVCacheSpecs.from_specs -> one group; get_kv_cache_config_from_groups:
    # num_blocks = available // sum(page_size_bytes), page = block_size x bytes per token of the cache layer
    spec = build_spec(M3)
    g = kv_groups(spec, 4, 1, "auto", 2, 128)
    assert (g.n_groups, g.n_full, g.n_slide, g.n_chunk, g.token_block) == (1, 1, 0, 0, 128)
    assert g.stage_bytes_per_block == (128 * 45_312,)                # 5,799,936 bytes per block
    # FullAttentionSpec.max_memory_usage_bytes: cdiv(max_model_len, block_size) pages per request
    assert g.blocks_per_request(131_072, 8192) == 1024 and g.blocks_per_request(131_073, 8192) == 1025
    # PP 2 (30 + 30 layers): stage 0 holds layers 0..29, 27 of them sparse; the engine takes the smaller pool
    g2 = kv_groups(spec, 4, 2, "auto", 2, 128)
    assert g2.stage_bytes_per_block == (128 * (30 * 512 + 27 * 256), 128 * (30 * 512 + 30 * 256))
    # a 256-token KV block (kernel block 128 divides it): pages double, same per-token bytes
    assert kv_groups(spec, 4, 1, "auto", 2, 256).stage_bytes_per_block == (256 * 45_312,)


@pytest.mark.parametrize("block", [16, 32, 64, 192])
def test_minimax_m3_block_size_must_be_a_multiple_of_128(block):
    # select_common_block_size_from_constraints: the block size itself if every backend takes it, else the largest
    # exact listed size dividing it, else ValueError("No common block size for {block}").  vLLM 0.30 (16 = no
    # --block-size keeps the first, dense layer's 16); from 0.31 an unset block size is 128 (next test)
    with pytest.raises(ValueError, match=f"No common block size for {block}"):
        kv_groups(build_spec(M3), 1, 1, "auto", 2, block, version=(0, 30))


@pytest.mark.parametrize("kv_dtype", ["fp8_inc", "float16"])
def test_minimax_m3_kv_dtypes_outside_the_sparse_backend_list_refused(kv_dtype):
    # MiniMaxM3SparseBackend.supported_kv_cache_dtypes = ["bfloat16", "fp8", "fp8_e4m3", "fp8_e5m2"]
    with pytest.raises(UnsupportedKvDtype, match="MiniMaxM3SparseBackend"):
        kv_bytes_per_token(build_spec(M3), kv_dtype)


def test_minimax_m3_indexer_dtype_outside_bf16_fp8_refused():
    # MiniMaxM3IndexerCache.__init__: NotImplementedError unless indexer_kv_dtype is bf16, fp8 or fp8_e4m3
    with pytest.raises(UnsupportedKvDtype, match="indexer_kv_dtype 'mxfp4'"):
        kv_groups(build_spec(M3), 1, 1, "auto", 2, 128, indexer_kv_dtype="mxfp4")


@pytest.mark.parametrize("edit, words", [
    ({"sparse_block_size": 64}, "SPARSE_BLOCK_SIZE = 128"),
    ({"sparse_topk_blocks": 0}, "sparse_topk_blocks"),
])
def test_minimax_m3_kv_refused_where_vllm_kernels_differ_weights_still_exact(edit, words):
    cfg = copy.deepcopy(M3)
    cfg["sparse_attention_config"].update(edit)
    spec = build_spec(cfg)
    assert spec.params_total == 426_174_565_632 and not spec.layers_kv
    assert spec.unsupported_reason.startswith("minimax_m3: weights modelled exactly") and words in spec.unsupported_reason


def test_minimax_m3_head_dim_other_than_128_keeps_weights_refuses_kv():
    # MiniMaxM3SparseBackend / MiniMaxM3IndexerBackend.get_supported_head_sizes() -> [128]
    cfg = copy.deepcopy(M3)
    cfg["head_dim"] = 64
    cfg["sparse_attention_config"]["sparse_index_dim"] = 64
    spec = build_spec(cfg)
    assert spec.params_total > 0 and not spec.layers_kv and "head size 128" in spec.unsupported_reason
    # no sparse layer at all: plain GQA through vLLM's Attention, any head size, no index cache, no top-k buffer
    cfg["sparse_attention_config"]["sparse_attention_freq"] = [0] * 60
    spec = build_spec(cfg)
    assert spec.unsupported_reason is None and spec.index_topk_buffer == (0, 0)
    assert kv_bytes_per_token(spec) == 60 * 4 * 128 * 2 and kv_groups(spec, 1, 1, "auto", 2, 16).token_block == 16


def test_minimax_m3_no_partial_rotary_factor_refuses_kv():
    # get_rope(..., rope_parameters={"rope_theta": config.rope_theta, "partial_rotary_factor":
    # config.partial_rotary_factor}): without the field the rotary cache width is not known
    spec = build_spec({k: v for k, v in M3.items() if k != "partial_rotary_factor"})
    assert spec.params_total == 426_174_565_632 and "partial_rotary_factor" in spec.unsupported_reason


def test_minimax_m3_shards():
    spec = build_spec(M3)
    a = "model.layers.3.self_attn"
    # MinimaxM3QKVParallelLinearWithIndexer: index_q shards like the K/V heads, index_k one replicated head
    assert _t(spec, f"{a}.indexer.q_proj.weight").shard is S.KV
    assert _t(spec, f"{a}.indexer.q_proj.weight").shape == (4 * 128, 6144)
    k = _t(spec, f"{a}.indexer.k_proj.weight")
    assert k.shard is S.REPLICATED and k.shape == (128, 6144)
    # layers with sparse_attention_freq 0 are MiniMaxM3Attention: no index projections
    assert not any(t.name.startswith("model.layers.0.self_attn.indexer") for t in spec.tensors)
    # GateLinear(hidden, E, params_dtype=torch.float32); e_score_correction_bias float32 Parameter
    gate = _t(spec, "model.layers.3.mlp.gate.weight")
    assert gate.dtype_bytes == 4 and gate.shard is S.REPLICATED and not gate.quantizable
    assert _t(spec, "model.layers.3.mlp.gate.e_score_correction_bias").allocated_only
    # dense layers (moe_layer_freq 0): MiniMaxM3MLP(intermediate_size=config.dense_intermediate_size)
    assert _t(spec, "model.layers.0.mlp.gate_proj.weight").shape == (12288, 6144)
    # shared expert: intermediate_size * n_shared_experts
    assert _t(spec, "model.layers.3.mlp.shared_experts.down_proj.weight").shape == (6144, 3072)
    # MiniMaxM3MoE: `if self.tp_size > config.num_local_experts: raise ValueError`
    assert spec.max_tp == 128


@pytest.mark.parametrize("edit, words", [
    ({"hidden_act": "silu"}, ("hidden_act",)),
    ({"attention_output_gate": True}, ("attention_output_gate",)),
    ({"n_shared_experts": 0}, ("n_shared_experts",)),
    ({"shared_intermediate_size": 1024}, ("shared_intermediate_size",)),
    ({"tie_word_embeddings": True}, ("tie_word_embeddings",)),
])
def test_minimax_m3_refused_where_vllm_and_transformers_differ(edit, words):
    spec = build_spec(dict(M3, **edit))
    assert spec.params_total == 0 and all(w in spec.unsupported_reason for w in words), spec.unsupported_reason


def test_minimax_m3_index_heads_must_equal_kv_heads():
    # MinimaxM3QKVParallelLinearWithIndexer: `total_num_index_heads != total_num_kv_heads` -> ValueError
    cfg = copy.deepcopy(M3)
    cfg["sparse_attention_config"]["sparse_num_index_heads"] = 8
    spec = build_spec(cfg)
    assert spec.params_total == 0 and "K/V heads" in spec.unsupported_reason


def test_minimax_m3_matrix_cell_end_to_end():
    # one cell through the matrix (estimate_one): 141 GiB GPUs, TP 8, 128-token blocks.  The pool is one
    # UniformTypeKVCacheSpecs group, so tokens = (available KV bytes // bytes per block) x 128 with 128 x 45,312
    # bytes a block (bf16 index keys) or 128 x 38,016 (fp8 index keys: 60 x 512 + 57 x 128)
    from reportgen.matrix import estimate_one

    spec = build_spec(M3_SERVED)
    cells = {idx: estimate_one(spec, 141.0, tp=8, max_model_len=131_072, block_size=128, indexer_kv_dtype=idx)
             for idx in ("bf16", "fp8")}
    for idx, per_token in (("bf16", 45_312), ("fp8", 38_016)):
        r = cells[idx]
        assert r["status"] == "fits" and r["block_size"] == 128
        blocks = int(r["kv_cache_gib"] * 2**30 // (128 * per_token))
        assert r["kv_cache_tokens"] == blocks * 128
        # a request of 131,072 tokens holds cdiv(131072, 128) = 1024 blocks
        assert r["max_concurrency"] == pytest.approx(blocks / 1024, rel=1e-9)
    assert cells["bf16"]["kv_cache_gib"] == cells["fp8"]["kv_cache_gib"]     # the indexer dtype moves tokens only
    # vLLM's default 16-token block: no common kernel block size with the sparse / indexer backends
    r16 = estimate_one(spec, 141.0, tp=8, max_model_len=131_072, block_size=16)
    assert r16["status"] == "unsupported" and "No common block size for 16" in r16["reason"]


def test_minimax_m3_topk_indices_buffer_is_non_kv_memory():
    # int32 [max(1, 4 // tp), padded max_num_batched_tokens, 16] allocated with the model: at TP 2,
    # 2 x 16 x 4 = 128 bytes per batched token more non-KV memory, and that much less KV
    import dataclasses

    from reportgen.matrix import estimate_one

    spec = build_spec(M3_SERVED)
    bare = dataclasses.replace(spec, index_topk_buffer=(0, 0))
    # 0.33: the profile-run budget (0.34's extensible cache also widens its margin by 0.75 x a larger peak)
    kw = dict(tp=2, max_model_len=8192, block_size=128, max_num_batched_tokens=8192, vllm_version="0.33")
    with_buf, without = estimate_one(spec, 300.0, **kw), estimate_one(bare, 300.0, **kw)
    assert with_buf["activation_gib"] - without["activation_gib"] == pytest.approx(2 * 16 * 4 * 8192 / 2**30)
    assert without["kv_cache_gib"] - with_buf["kv_cache_gib"] == pytest.approx(2 * 16 * 4 * 8192 / 2**30)


def test_minimax_m3_job_key_indexer_kv_dtype():
    from reportgen.job import JobError, parse_matrix

    assert parse_matrix({"indexer_kv_dtype": "fp8", "block_size": 128}).indexer_kv_dtype == "fp8"
    assert parse_matrix({}).indexer_kv_dtype == "bf16"
    with pytest.raises(JobError, match="indexer_kv_dtype"):
        parse_matrix({"indexer_kv_dtype": "nvfp4"})


def test_minimax_m3_attention_config_flag():
    # vLLM --attention-config (AttentionConfig as JSON): indexer_kv_dtype is read, any other key is refused
    from reportgen.vllm_args import VllmArgsError, parse_vllm_command

    cmd = parse_vllm_command("vllm serve MiniMaxAI/MiniMax-M3 -tp 8 --block-size 128 "
                             "--attention-config '{\"indexer_kv_dtype\": \"fp8\"}'")
    assert cmd.engine["attention_config"] == "fp8" and cmd.engine["block_size"] == 128
    for bad in ('{"indexer_kv_dtype": "mxfp4"}', '{"backend": "FLASHINFER"}', "fp8"):
        with pytest.raises(VllmArgsError, match="attention-config"):
            parse_vllm_command(f"vllm serve MiniMaxAI/MiniMax-M3 --attention-config '{bad}'")


def test_minimax_m3_vllm_0_30_picks_the_block_size_from_its_first_attention_layer():
    """Without --block-size (a job's 16, vLLM's DEFAULT_BLOCK_SIZE) vLLM asks the first non-SSM attention layer's
    backend for ``get_preferred_block_size(16)`` (Platform.update_block_size_for_backend, read in copies):
    ``AttentionBackend.get_preferred_block_size`` (vllm/v1/attention/backend.py @0014ca6b) returns 16 when the
    backend takes it, else the smallest size it lists.  MiniMax-M3 as shipped starts with three dense layers
    (plain ``Attention``, nvidia/model.py @90215894): 16 stays and the sparse backend's [128]
    (common/sparse_attention.py @fa109e0e) makes vLLM raise "No common block size for 16".  A config whose
    layer 0 is sparse gets 128 from vLLM itself: priced at 128, the same cell as --block-size 128."""
    from reportgen.estimate.kvcache import auto_block_size
    from reportgen.matrix import estimate_one

    spec = build_spec(M3)
    assert M3["sparse_attention_config"]["sparse_attention_freq"][:4] == [0, 0, 0, 1]
    assert auto_block_size(spec.layers_kv, 16, 16, (0, 30)) == 16
    first_sparse = copy.deepcopy(M3_SERVED)
    first_sparse["sparse_attention_config"]["sparse_attention_freq"][0] = 1
    s2 = build_spec(first_sparse)
    assert auto_block_size(s2.layers_kv, 16, 16, (0, 30)) == 128
    assert auto_block_size(s2.layers_kv, 256, 16, (0, 30)) == 256        # a --block-size the user gives is kept
    with pytest.raises(ValueError, match="No common block size for 32"):
        kv_groups(s2, 1, 1, "auto", 2, 32)
    a = estimate_one(s2, 141.0, tp=8, max_model_len=131_072, vllm_version="0.30")
    b = estimate_one(s2, 141.0, tp=8, max_model_len=131_072, block_size=128, vllm_version="0.30")
    assert a["status"] == "fits" and a["block_size"] == 128
    assert (a["kv_cache_tokens"], a["kv_cache_gib"]) == (b["kv_cache_tokens"], b["kv_cache_gib"])


def test_minimax_m3_vllm_0_31_picks_a_block_size_every_backend_takes():
    """From vLLM 0.31 Phase 1 asks every attention backend (``_preferred_block_size_for_backends``, vllm 0.31.0 sdist
    platforms/interface.py; 0.34.0 :710-757: the default when all accept it, else the smallest LCM of one supported
    size per backend): MiniMax-M3 as shipped -- dense FlashAttention layers first (MultipleOf(16)) and the sparse /
    indexer backends' exact 128 -- runs at lcm(16, 128) = 128, where 0.30 failed with "No common block size for 16".
    0.34's default 64 is not a multiple of 128 either: 128 again.  A --block-size the user gives is still kept."""
    from reportgen.estimate.kvcache import auto_block_size
    from reportgen.matrix import estimate_one

    spec = build_spec(M3_SERVED)
    assert auto_block_size(spec.layers_kv, 16, 16, (0, 31)) == 128
    assert auto_block_size(spec.layers_kv, 64, 64, (0, 34)) == 128
    assert auto_block_size(spec.layers_kv, 256, 16, (0, 31)) == 256
    old = estimate_one(spec, 141.0, tp=8, max_model_len=131_072, vllm_version="0.30")
    new = estimate_one(spec, 141.0, tp=8, max_model_len=131_072, vllm_version="0.31")
    assert old["status"] != "fits" and "No common block size for 16" in old["reason"]
    assert new["status"] == "fits" and new["block_size"] == 128
    at128 = estimate_one(spec, 141.0, tp=8, max_model_len=131_072, vllm_version="0.30", block_size=128)
    assert new["kv_cache_tokens"] == at128["kv_cache_tokens"]


def test_minimax_m3_served_form_is_the_same_model():
    """The served stand-in (M3_SERVED) differs from the fixture only in the names vLLM needs: same weights, same
    per-layer KV; the fixture itself is refused on every release, the stand-in priced from 0.24
    (tests/test_minimax_m3_load.py)."""
    a, b = build_spec(M3), build_spec(M3_SERVED)
    assert a.params_total == b.params_total == 426_174_565_632
    assert a.layers_kv == b.layers_kv and a.index_topk_buffer == b.index_topk_buffer
    assert (a.model_type, a.architectures) == ("minimax_m3", ("MiniMaxM3ForCausalLM",))
    assert (b.model_type, b.architectures) == ("minimax_m3_vl_text", ("MiniMaxM3SparseForCausalLM",))
