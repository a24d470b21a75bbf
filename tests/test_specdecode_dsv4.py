"""DeepSeek-V4's MTP draft (``--speculative-config '{"method": "mtp", ...}'``): its layer, KV and buffers.

Sources (vllm-project/vllm, read with the search tool): ``vllm/model_executor/models/deepseek_v4_mtp.py``
@023da1fc (``DeepSeekV4MultiTokenPredictorLayer``: enorm / hnorm RMSNorm(H), e_proj / h_proj
``ReplicatedLinear(H, H, quant_config)``, hc_head_fn (hc, hc x H) / hc_head_base (hc) / hc_head_scale (1) float32,
``SharedHead`` (norm + head), ``mtp_block = DeepseekV4DecoderLayer`` at prefix ``model.layers.{num_hidden_layers +
i}``; ``DeepSeekV4MultiTokenPredictor``: its own ``topk_indices_buffer`` and a ``VocabParallelEmbedding``),
``vllm/model_executor/models/deepseek_v4.py`` @023da1fc (``DeepseekV4Attention``: ``compress_ratio = 1`` -- sliding
window only -- for ``layer_id >= num_hidden_layers``), ``vllm/v1/spec_decode/llm_base_proposer.py`` @00c4f22d
(an MTP draft takes the target's embedding, lm_head -- every ``shared_head.head`` -- and ``topk_indices_buffer``;
its ``hidden_states`` buffer is ``hc_mult x hidden_size`` wide for DeepSeek-V4).  Row 156's log (search file id
56819795714, vLLM 0.25.0) prints the loaded-parameter count, the three shares and the checkpoint size.
"""

import json
from pathlib import Path

import pytest

from reportgen.arch import build_spec
from reportgen.arch.spec import Shard
from reportgen.estimate import compressed as C
from reportgen.estimate.specdecode import parse_speculative_config, resolve
from reportgen.estimate.tables import scheme_for
from reportgen.matrix import estimate_one

ROOT = Path(__file__).resolve().parents[1]
FLASH = json.loads((ROOT / "tests/data/configs_2026/deepseek-ai--DeepSeek-V4-Flash.json").read_text())
GIB = float(1 << 30)
MTP2 = {"method": "mtp", "num_speculative_tokens": 2}


@pytest.fixture(scope="module")
def flash():
    return build_spec(FLASH, "deepseek-ai/DeepSeek-V4-Flash")


def test_the_mtp_layer_is_vllms_deepseek_v4_mtp_layer(flash):
    h, q, hd, heads, groups, o, hc, e, mi = 4096, 1024, 512, 64, 8, 1024, 4, 256, 2048
    mix = (2 + hc) * hc
    # mtp_block's attention at compress_ratio 1 (layer 43 >= num_hidden_layers): no compressor, no indexer
    attn = (h * q + h * hd + q + q * heads * hd + hd + (heads * hd // groups) * (groups * o) + groups * o * h
            + heads + mix * hc * h + mix + 3)
    # its MoE: norm_gate (norm + router), 256 routed experts, one shared expert, hc_ffn
    moe = h + e * h + e * 3 * mi * h + 3 * mi * h + mix * hc * h + mix + 3
    # the layer around it: attn_norm; enorm, hnorm, shared_head.norm; e_proj, h_proj; hc_head fn / base / scale
    extra = h + 3 * h + 2 * h * h + hc * hc * h + hc + 1
    assert (attn, moe) == (107_349_595, 6_469_062_683)
    assert flash.mtp_params == attn + moe + extra == 6_610_048_635
    assert sum(t.params for t in flash.mtp_tensors) == flash.mtp_params      # the checkpoint has no MTP emb / head
    names = {t.name for t in flash.mtp_tensors}
    assert all(n.startswith("model.layers.43.") for n in names)
    assert not any("compressor" in n or "indexer" in n for n in names)
    for p in ("e_proj", "h_proj"):
        t = next(t for t in flash.mtp_tensors if t.name == f"model.layers.43.{p}.weight")
        assert t.shape == (h, h) and t.shard is Shard.REPLICATED and t.quantizable      # fp8 block, every rank
    fn = next(t for t in flash.mtp_tensors if t.name == "model.layers.43.hc_head_fn")
    assert fn.shape == (hc, hc * h) and fn.dtype_bytes == 4
    assert not any("embed" in n or "shared_head.head" in n for n in names)           # the target's, shared


def test_the_39_parameters_vllm_logs_loading(flash):
    """Row 156's log: "MTP draft model loaded: 39 params" = vLLM parameter names: the tensors here with the
    fused halves (``fused_wqa_wkv[wq_a|wkv]``, ``gate_up_proj[gate|up]``) as one, a ``weight_scale_inv`` /
    ``weight_scale`` beside every fp8 / MXFP4 weight, and ``e_score_correction_bias`` (not priced: 1 KiB).
    No ``embed_tokens`` or ``shared_head.head`` among them: the checkpoint holds neither for the MTP layer."""
    base = {t.name.split("[")[0] + (".weight" if "[" in t.name else "") for t in flash.mtp_tensors}
    scales = {n for n in base if any(t.quantizable and t.name.split("[")[0] + (".weight" if "[" in t.name else "") == n
                                     for t in flash.mtp_tensors)}
    assert (len(base), len(scales)) == (28, 10)
    assert len(base) + len(scales) + 1 == 39


def test_target_plus_mtp_is_the_logged_checkpoint_size(flash):
    """Row 156: "Checkpoint size: 148.66 GiB" (46 safetensors shards, MTP layer included).  The fp8-block +
    MXFP4-expert checkpoint bytes of the target (145.28 GiB) and the MTP layer (3.35 GiB) come within 0.03 GiB:
    the shards' JSON headers and the tables not priced (hash layers' tid2eid, e_score_correction_bias)."""
    sch = scheme_for(flash, "checkpoint")
    target = sum(sch.tensor_bytes(t) for t in flash.tensors) / GIB
    mtp = sum(sch.tensor_bytes(t) for t in flash.mtp_tensors) / GIB
    assert round(target, 2) == 145.28 and round(mtp, 2) == 3.35
    assert 148.66 - 0.05 < target + mtp < 148.66


def test_mtp_layer_is_sliding_only_whatever_compress_ratios_lists():
    # vLLM never reads compress_ratios[num_hidden_layers + i]: a 4 there still builds a sliding layer
    two = build_spec({**FLASH, "num_nextn_predict_layers": 2, "compress_ratios": FLASH["compress_ratios"][:43] + [4, 128]})
    assert [l.compressed.ratio for l in two.mtp_layers_kv] == [0, 0]
    assert {t.layer for t in two.mtp_tensors} == {43, 44}
    assert not any("compressor" in t.name for t in two.mtp_tensors)
    assert two.mtp_params == 2 * 6_610_048_635
    assert build_spec({**FLASH, "num_nextn_predict_layers": 0}).mtp_tensors == []


def test_the_mtp_sliding_cache_fills_the_second_sliding_group(flash):
    """The draft's DeepseekV4SWACache joins the target's sliding caches (vLLM's KV spec walks every attention
    layer): 44 sliding latents split into 22 + 22 where the target's 43 gave 22 + 21 -- the same number of groups
    and the same bytes per block, so at DeepSeek-V4-Flash's shape the MTP layer's KV costs nothing extra."""
    base = C.plan(flash.layers_kv, [(0, 43)])
    mtp = C.plan(flash.layers_kv + flash.mtp_layers_kv, [(0, 44)])
    assert [len(g.caches) for g in base.groups] == [62, 22, 21, 42, 20]
    assert [len(g.caches) for g in mtp.groups] == [62, 22, 22, 42, 20]
    assert mtp.stage_bytes_per_block == base.stage_bytes_per_block == (1_051_776,)
    m, f = 1_048_576, 4_096                          # row 156: 1M context, 4,096 batched tokens
    assert mtp.pages_per_request(m, f) == 4_096 + 2 * 67 + 1_027 + 529 == 5_786
    # at row 156's logged 10.29 GiB: 10,504 blocks -> 1.815 requests, 1,903,602 tokens (logged 1.90 / 1,993,100)
    nb = mtp.num_blocks([int(10.29 * GIB)])
    assert nb == 10_504 and mtp.kv_cache_tokens(nb, m, f) == 1_903_602


def test_estimate_with_the_mtp_draft(flash):
    kw = dict(tp=4, weights_as="bf16", kv_cache_dtype="fp8", max_model_len=65_536, max_num_batched_tokens=4_096,
              max_num_seqs=64)
    base = estimate_one(flash, 300.0, **kw)
    mtp = estimate_one(flash, 300.0, speculative_config=MTP2, **kw)
    assert mtp["status"] in ("fits", "tight"), mtp["reason"]
    assert mtp["speculative"].startswith("mtp k=2: 1 MTP layer")
    # bf16: replicated tensors whole on every rank, column / row / experts / 4; float32 tensors stay float32
    def rank_bytes(t):
        b = t.numel * (t.dtype_bytes or 2)
        return b if t.shard is Shard.REPLICATED else b / 4
    assert mtp["draft_weights_gib"] * GIB == pytest.approx(sum(rank_bytes(t) for t in flash.mtp_tensors), rel=1e-12)
    assert mtp["weights_gib"] - base["weights_gib"] == pytest.approx(mtp["draft_weights_gib"], rel=1e-9)
    assert mtp["kv_bytes_per_token"] == base["kv_bytes_per_token"]       # a sliding layer: no per-token bytes


def test_proposer_buffers_are_hc_mult_wide(flash):
    d = resolve(flash, parse_speculative_config(MTP2))
    assert d.reason is None and (d.k, d.graph_layers, len(d.layers_kv)) == (2, 1, 1)
    # hidden_states (T, hc_mult x H) + inputs_embeds (T, H) in the model dtype; int32 input_ids / arange,
    # int64 positions / slot mapping.  No topk buffer: the draft's is replaced by the target's (row 156 logs
    # "Sharing target model topk_indices_buffer with the draft model")
    assert (d.buffer_elems_t, d.buffer_bytes_t) == (4 * 4096 + 4096, 24)


def test_mtp_layers_split_over_sliding_groups_are_refused():
    """Two MTP layers: 45 sliding latents split into two groups of 23 + 22 (``tuples[i::2]``), layers 43 and 44
    in different ones -- vLLM's ``validate_same_kv_cache_group`` (llm_base_proposer.py @00c4f22d) asserts one group
    for every draft layer, so the start fails."""
    two = build_spec({**FLASH, "num_nextn_predict_layers": 2})
    d = resolve(two, parse_speculative_config(MTP2))
    groups = C.kv_groups(C.layer_caches(two.layers_kv + two.mtp_layers_kv))
    assert [[c.layer for c in g.caches if c.layer >= 43] for g in groups] == [[], [44], [43], [], []]
    assert d.reason and "validate_same_kv_cache_group" in d.reason
