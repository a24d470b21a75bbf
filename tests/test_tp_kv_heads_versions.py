"""TP above the KV-head count, per vLLM release (issue 12 residual, branch residual12).

Past ``num_key_value_heads`` vLLM's QKVParallelLinear gives each rank ONE replicated KV head
(vllm 0.26.0 sdist layers/linear.py:1004-1006: ``num_kv_heads = 1``, ``num_kv_head_replicas = tp / n_kv``).  Most
families price that (Llama-style replication).  Families whose k norm spans the WHOLE key projection cannot take
it, and vLLM fails to start:

* olmo2 / olmo3 / olmoe / olmo_hybrid natively: ``_apply_qk_norm`` all-gathers k (tp x head_dim values) into
  ``RMSNorm(num_key_value_heads x head_dim)`` -- 0.10 - 0.19 ``ValueError("Expected hidden_size to be ..., but
  found: ...")`` (layernorm.py), 0.20 on a torch broadcast RuntimeError from ``vllm.ir`` rms_norm
  (ir/ops/layernorm.py:20).
* the same architectures on the Transformers backend (olmo2 0.26, olmo3 0.29, olmoe 0.34): ``TPAwareRMSNorm``
  raises ``"Cannot gather norm of width ..."`` -- unless num_key_value_heads is 1 (k is whole on every rank).
* minimax_m2 0.11.1 - 0.20: ``MiniMaxText01RMSNormTP`` k_norm keeps ``n_kv * head_dim / tp`` weights a rank,
  narrower than the replicated head; 0.21 shards it by num_key_value_heads and starts.

Every expected number below is derived by hand from the shapes; the sdist tests read the cited lines.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reportgen.arch import build_spec
from reportgen.estimate import quant
from reportgen.estimate.kvcache import kv_bytes_per_token
from reportgen.estimate.layout import Layout
from reportgen.estimate.served import spec_for_version
from reportgen.estimate.tables import model_rule
from reportgen.estimate.weights import build_weight_table, stage_weights

ROOT = Path(__file__).resolve().parents[1]
SRC = Path("/work/vllm_src")
needs_sdists = pytest.mark.skipif(not SRC.is_dir(), reason="vLLM release sdists not unpacked")
transformers = pytest.importorskip("transformers")


def defaults(model_type: str, arch: str, **kw) -> dict:
    """transformers' config class defaults with the architecture vLLM resolves."""
    return dict(transformers.AutoConfig.for_model(model_type, **kw).to_dict(), architectures=[arch])


def rule(spec, version, tp):
    return model_rule(spec_for_version(spec, version), Layout(tp=tp))


def sdist_line(version: str, path: str, line: int) -> str:
    return (SRC / f"vllm-{version}" / "vllm" / path).read_text().splitlines()[line - 1]


# ------------------------------------------------------------------ olmo2: native 0.10 - 0.25, backend 0.26

# Olmo2Config defaults (hidden 4096, 32 heads -> head_dim 128) with 4 KV heads: k_norm = RMSNorm(4 x 128 = 512);
# at tp 8 the all-gathered k is 8 x 128 = 1024 wide
OLMO2_GQA4 = dict(num_key_value_heads=4)


@pytest.mark.parametrize(("version", "words"), [
    # vllm 0.10.0 sdist layernorm.py:132 (RMSNorm.forward_native), 0.19.1 layernorm.py:242 (forward_static)
    ("0.10", 'ValueError("Expected hidden_size to be 512, but found: 1024")'),
    ("0.19", 'ValueError("Expected hidden_size to be 512, but found: 1024")'),
    # vllm 0.20.0 .. 0.25.1 sdist ir/ops/layernorm.py:20: x.to(weight.dtype) * weight
    ("0.20", "The size of tensor a (1024) must match the size of tensor b (512) at non-singleton dimension 1"),
    ("0.25", "The size of tensor a (1024) must match the size of tensor b (512) at non-singleton dimension 1"),
    # vllm 0.26.0 sdist transformers/fusers/rms_norm.py:94-100, 0.34.0 :121-127
    ("0.26", "Cannot gather norm of width 512: a TP-sharded input of width 128 does not tile it evenly across 8"),
    ("0.34", "Cannot gather norm of width 512: a TP-sharded input of width 128 does not tile it evenly across 8"),
])
def test_olmo2_tp_above_kv_heads_is_invalid_on_every_release(version, words):
    spec = build_spec(defaults("olmo2", "Olmo2ForCausalLM", **OLMO2_GQA4))
    assert (spec.num_attention_heads, spec.num_kv_heads, spec.head_dim) == (32, 4, 128)
    why = rule(spec, version, 8)
    assert why and why.startswith("tp (8) > num_key_value_heads (4)") and words in why
    assert rule(spec, version, 4) is None and rule(spec, version, 2) is None     # tp <= n_kv: priced


def test_olmo2_release_ranges_are_named():
    spec = build_spec(defaults("olmo2", "Olmo2ForCausalLM", **OLMO2_GQA4))
    assert "vLLM 0.10 - 0.19 (olmo2.py" in rule(spec, "0.15", 8)
    assert "vLLM 0.20 - 0.25 (olmo2.py" in rule(spec, "0.22", 8)
    assert "vLLM 0.26+ (Transformers backend)" in rule(spec, "0.31", 8)


def test_matrix_cell_is_invalid_layout_with_the_reason():
    """Through the matrix (reportgen estimate's path): the cell is ``invalid_layout``, not a price."""
    from reportgen.matrix import estimate_one

    spec = build_spec(defaults("olmo2", "Olmo2ForCausalLM", **OLMO2_GQA4))
    bad = estimate_one(spec, 79.2, tp=8, max_model_len=2048, vllm_version="0.31")
    assert bad["status"] == "invalid_layout" and "Cannot gather norm of width 512" in bad["reason"]
    ok = estimate_one(spec, 79.2, tp=4, max_model_len=2048, vllm_version="0.31")
    assert ok["status"] in ("fits", "tight", "no_fit")


# ------------------------------------------------------------------ olmo3 with one KV head: native fails, backend prices

def olmo3_mqa() -> dict:
    """A small olmo3 with ONE KV head: hidden 256, 8 heads (head_dim 32), 2 layers (sliding + full), untied."""
    return dict(model_type="olmo3", architectures=["Olmo3ForCausalLM"], hidden_size=256, num_hidden_layers=2,
                num_attention_heads=8, num_key_value_heads=1, intermediate_size=512, vocab_size=1024,
                max_position_embeddings=4096, tie_word_embeddings=False, sliding_window=128,
                layer_types=["sliding_attention", "full_attention"], rms_norm_eps=1e-6)


@pytest.mark.parametrize(("version", "words"), [
    ("0.11", "vLLM 0.11 - 0.19 (olmo2.py"),          # Olmo3ForCausalLM first listed in 0.11 (first_served.json)
    ("0.19", 'Expected hidden_size to be 32, but found: 256'),
    ("0.25", "vLLM 0.20 - 0.25 (olmo2.py"),
    ("0.26", "vLLM 0.26 - 0.28 (olmo3.py"),          # vllm 0.26.0 .. 0.28.0 sdist olmo3.py:113,158-165
    ("0.28", "The size of tensor a (256) must match the size of tensor b (32)"),
])
def test_olmo3_one_kv_head_fails_natively(version, words):
    why = rule(build_spec(olmo3_mqa()), version, 8)
    assert why and why.startswith("tp (8) > num_key_value_heads (1)") and words in why


@pytest.mark.parametrize("version", ["0.29", "0.34"])
def test_olmo3_one_kv_head_is_priced_on_the_backend_with_replicated_k_v(version):
    """vllm 0.29.0 .. 0.34.0 sdist transformers/fusers/rms_norm.py: k on a rank is the whole 32-wide head, not
    narrower than k_norm's 32 weights, so TPAwareRMSNorm normalises it without a gather -- vLLM starts."""
    spec = spec_for_version(build_spec(olmo3_mqa()), version)
    assert model_rule(spec, Layout(tp=8)) is None
    # KV cache: 2 layers x (K, V) x 1 head x 32 x bf16 = 256 B/token on every rank, tp 1 or 8 (replicated head)
    assert kv_bytes_per_token(spec, "auto", 2, 8) == 2 * 2 * 1 * 32 * 2 == 256
    assert kv_bytes_per_token(spec, "auto", 2, 1) == 256
    # weights on a tp-8 rank, by hand (elements): per layer q 256x256/8 = 8192, k and v 32x256 WHOLE (one
    # replicated head) = 8192 each, o 8192, q_norm 256 + k_norm 32 (replicated), gate/up 512x256/8 = 16384 each,
    # down 16384, post-attention + post-feedforward norms 512 -> 82,720; x 2 layers = 165,440; embedding and
    # lm_head 1024x256/8 = 32,768 each (1024 rows already a multiple of 64), final norm 256 -> 231,232 x 2 B
    table = build_weight_table(spec, quant.whatif_scheme("bf16"), 2)
    (st,) = stage_weights(table, Layout(tp=8))
    assert st.bytes - table.buffer_bytes == 231_232 * 2 == 462_464


# ------------------------------------------------------------------ olmoe: native 0.10 - 0.33, backend 0.34

@pytest.mark.parametrize(("version", "words"), [
    ("0.10", 'Expected hidden_size to be 512, but found: 1024'),       # olmoe.py:151,176-182
    ("0.33", "The size of tensor a (1024) must match the size of tensor b (512)"),   # olmoe.py:165,190-197
    ("0.34", "Cannot gather norm of width 512: a TP-sharded input of width 128"),
])
def test_olmoe_tp_above_kv_heads(version, words):
    # OlmoeConfig defaults: hidden 2048, 16 heads -> head_dim 128; 4 KV heads -> k_norm 512 wide
    spec = build_spec(defaults("olmoe", "OlmoeForCausalLM", num_key_value_heads=4))
    why = rule(spec, version, 8)
    assert why and words in why
    assert rule(spec, version, 4) is None


def test_olmoe_one_kv_head_native_fails_backend_prices():
    spec = build_spec(defaults("olmoe", "OlmoeForCausalLM", num_key_value_heads=1))
    assert "Expected hidden_size to be 128, but found: 256" in rule(spec, "0.19", 2)
    assert rule(spec, "0.34", 2) is None


# ------------------------------------------------------------------ olmo_hybrid: native on every release

def test_olmo_hybrid_attention_layers_refuse_tp_above_kv_heads():
    """OLMo-Hybrid's class defaults with 32 heads of 128 and 4 KV heads (GDN heads 16 / 32: tp 8 divides them,
    arch/state.py): the attention layers' k_norm is 4 x 128 = 512 wide, the gathered k 8 x 128 = 1024
    (vllm 0.18.0 sdist olmo_hybrid.py:637,680-687; 0.34.0 olmo_hybrid.py:120,164-171)."""
    cfg = dict(defaults("olmo_hybrid", "OlmoHybridForCausalLM"), hidden_size=4096, num_attention_heads=32,
               num_key_value_heads=4, linear_num_key_heads=16, linear_num_value_heads=32)
    spec = build_spec(cfg)
    assert spec.unsupported_reason is None and spec.head_dim == 128
    for version, words in (("0.18", "Expected hidden_size to be 512, but found: 1024"),
                           ("0.34", "The size of tensor a (1024) must match the size of tensor b (512)")):
        why = rule(spec, version, 8)
        assert why and "OlmoHybridAttention._apply_qk_norm" in why and words in why
        assert rule(spec, version, 4) is None


# ------------------------------------------------------------------ tp that does not divide: the generic rules

def test_tp_not_dividing_heads_or_kv_heads_is_the_generic_rule():
    """vLLM's ModelConfig.verify_with_parallel_config: "Total number of attention heads (32) must be divisible by
    tensor parallel size (3)" (vllm 0.34.0 sdist config/model.py:1579); Olmo2Attention asserts
    total_num_kv_heads % tp == 0 / tp % total_num_kv_heads == 0 (vllm 0.10.0 sdist olmo2.py:82,84)."""
    spec = build_spec(defaults("olmo2", "Olmo2ForCausalLM", **OLMO2_GQA4))
    assert rule(spec, "0.31", 3) == "num_attention_heads (32) % tp (3) != 0"
    six = build_spec(defaults("olmo2", "Olmo2ForCausalLM", hidden_size=3072, num_attention_heads=24,
                              num_key_value_heads=6))
    assert rule(six, "0.20", 4) == "num_key_value_heads (6) and tp (4): neither divides the other"


# ------------------------------------------------------------------ minimax_m2: fails 0.11.1 - 0.20, priced 0.21+

def minimax_m25() -> dict:
    return json.loads((ROOT / "reportgen/sources/bundled/MiniMaxAI--MiniMax-M2.5.json").read_text())


@pytest.mark.parametrize("version", ["0.11", "0.20"])
def test_minimax_m25_tp16_fails_before_021(version):
    """48 heads, 8 KV heads of 128: at tp 16 k_norm keeps int(1024 / 16) = 64 weights a rank against the rank's
    128-wide replicated head (vllm 0.20.2 sdist layers/mamba/linear_attn.py:43, :98)."""
    spec = build_spec(minimax_m25())
    why = rule(spec, version, 16)
    assert why and "The size of tensor a (128) must match the size of tensor b (64)" in why
    assert rule(spec, version, 8) is None


def test_minimax_m25_tp16_priced_from_021_one_kv_head_a_rank():
    """vllm 0.21.0 sdist minimax_m2.py:224-238: k_norm sharded by num_key_value_heads when tp > it."""
    spec = spec_for_version(build_spec(minimax_m25()), "0.21")
    assert model_rule(spec, Layout(tp=16)) is None
    assert kv_bytes_per_token(spec, "auto", 2, 16) == 62 * 2 * 1 * 128 * 2 == 31_744


def test_minimax_m2_k_norm_on_a_rank_is_its_heads_width():
    """A small minimax_m2 (hidden 256, 8 heads / 2 KV heads of 32, 4 experts of 64, 1 layer) on vLLM 0.21 at tp 4:
    by hand (elements) q 256x256/4 = 16384, k / v 64x256 half each (one of 2 heads) = 8192 + 8192, o 16384,
    q_norm 256/4 = 64, k_norm 64/2 = 32 (one head, minimax_m2.py:224-238 -- not 64/4 = 16), input + post norms
    512, experts 4 x (128x256 + 256x64) / 4 = 49152, embedding + lm_head 1024x256/4 x 2 = 131072, final norm 256
    -> 230,240 x 2 B, plus the router 4x256 in fp32 (vllm 0.21.0 sdist minimax_m2.py ReplicatedLinear(...,
    params_dtype=torch.float32)) = 4096 B."""
    cfg = dict(model_type="minimax_m2", architectures=["MiniMaxM2ForCausalLM"], hidden_size=256,
               num_hidden_layers=1, num_attention_heads=8, num_key_value_heads=2, head_dim=32, rotary_dim=16,
               intermediate_size=64, num_local_experts=4, num_experts_per_tok=2, vocab_size=1024,
               max_position_embeddings=4096, tie_word_embeddings=False)
    spec = spec_for_version(build_spec(cfg), "0.21")
    table = build_weight_table(spec, quant.whatif_scheme("bf16"), 2)
    (st,) = stage_weights(table, Layout(tp=4))
    assert st.bytes - table.buffer_bytes == 230_240 * 2 + 1024 * 4 == 464_576


# ------------------------------------------------------------------ cohere with use_qk_norm: fails at weight loading

def command_r_gqa(**kw) -> dict:
    """Command-R v01 (64 heads of 128) with 8 KV heads, as Command-R+ has."""
    cfg = json.loads((ROOT / "tests/data/configs_2026/CohereForAI--c4ai-command-r-v01.json").read_text())
    return dict(cfg, num_key_value_heads=8, **kw)


@pytest.mark.parametrize("version", ["0.10", "0.22", "0.34"])
def test_cohere_qk_norm_tp_above_kv_heads_fails_at_load(version):
    """commandr.py builds k_norm with param_shape (num_kv_heads on the rank = 1, 128) and loads it with
    row_parallel_weight_loader: rows tp_rank .. tp_rank + 1 of the (8, 128) checkpoint weight -- rank 8 of a tp-16
    group narrows past the end (vllm 0.10.0 sdist commandr.py:213-215, weight_utils.py:642-644;
    0.34.0 commandr.py:261-263, weight_utils.py:1617-1619).  torch 2.13 (the venv):
    torch.ones(8, 128).narrow(0, 8, 1) -> RuntimeError "start (8) + length (1) exceeds dimension size (8)."."""
    spec = build_spec(command_r_gqa(use_qk_norm=True))
    why = rule(spec, version, 16)
    assert why and why.startswith("tp (16) > num_key_value_heads (8) with use_qk_norm")
    assert "start (8) + length (1) exceeds dimension size (8)." in why
    assert rule(spec, version, 8) is None


def test_cohere_without_qk_norm_replicates_kv_heads():
    """No k_norm: QKVParallelLinear replicates the 8 KV heads over 16 ranks and vLLM starts -- priced with one KV
    head a rank: 40 layers x (K, V) x 1 x 128 x bf16 = 20,480 B/token."""
    spec = spec_for_version(build_spec(command_r_gqa()), "0.31")
    assert model_rule(spec, Layout(tp=16)) is None
    assert kv_bytes_per_token(spec, "auto", 2, 16) == 40 * 2 * 1 * 128 * 2 == 20_480


def test_torch_narrow_error_text():
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError, match=r"start \(8\) \+ length \(1\) exceeds dimension size \(8\)\."):
        torch.ones(8, 128).narrow(0, 8, 1)


# ------------------------------------------------------------------ the cited vLLM lines say what the reasons say

@needs_sdists
@pytest.mark.parametrize(("version", "path", "line", "text"), [
    ("0.10.0", "model_executor/models/olmo2.py", 82, "assert self.total_num_kv_heads % self.tp_size == 0"),
    ("0.10.0", "model_executor/models/olmo2.py", 84, "assert self.tp_size % self.total_num_kv_heads == 0"),
    ("0.10.0", "model_executor/models/olmo2.py", 143, "k = tensor_model_parallel_all_gather(k.contiguous())"),
    ("0.10.0", "model_executor/models/olmo2.py", 145, "k = self.k_norm(k)"),
    ("0.25.1", "model_executor/models/olmo2.py", 113, "self.k_norm = RMSNorm("),
    ("0.25.1", "model_executor/models/olmo2.py", 167, "k = self.k_norm(k)"),
    ("0.26.0", "model_executor/models/olmo3.py", 113, "self.k_norm = RMSNorm("),
    ("0.28.0", "model_executor/models/olmo3.py", 165, "k = self.k_norm(k)"),
    ("0.10.0", "model_executor/models/olmoe.py", 151, "self.k_norm = RMSNorm(self.total_num_kv_heads"),
    ("0.33.0", "model_executor/models/olmoe.py", 197, "k = self.k_norm(k)"),
    ("0.34.0", "model_executor/models/olmo_hybrid.py", 171, "k = self.k_norm(k)"),
    ("0.10.0", "model_executor/layers/layernorm.py", 132, 'raise ValueError("Expected hidden_size to be "'),
    ("0.19.1", "model_executor/layers/layernorm.py", 242, 'f"Expected hidden_size to be {hidden_size}, but found'),
    ("0.20.0", "ir/ops/layernorm.py", 20, "x = x.to(weight.dtype) * weight"),
    ("0.34.0", "ir/ops/layernorm.py", 20, "x = x.to(weight.dtype) * weight"),
    ("0.26.0", "model_executor/models/transformers/fusers/rms_norm.py", 95,
     "if x.shape[-1] * self.tp_size != full:"),
    ("0.34.0", "model_executor/models/transformers/fusers/rms_norm.py", 124,
     'f"Cannot gather norm of width {full}: a TP-sharded input of "'),
    ("0.34.0", "model_executor/models/transformers/fusers/rms_norm.py", 121,
     "if self.tp_size > 1 and x.shape[-1] < (full := self.weight.shape[0]):"),
    ("0.20.2", "model_executor/layers/mamba/linear_attn.py", 43,
     "self.weight = nn.Parameter(torch.ones(int(hidden_size / self.tp_world)))"),
    ("0.20.2", "model_executor/layers/mamba/linear_attn.py", 98,
     "k = k * torch.rsqrt(k_var + k_norm.variance_epsilon) * k_norm.weight"),
    ("0.21.0", "model_executor/models/minimax_m2.py", 224, "if self.total_num_kv_heads >= tp_size:"),
    ("0.21.0", "model_executor/models/minimax_m2.py", 235, "weight_shard_world_size=self.total_num_kv_heads,"),
    ("0.34.0", "config/model.py", 1579, "if total_num_attention_heads % tensor_parallel_size != 0:"),
    ("0.10.0", "model_executor/models/commandr.py", 213, "self.k_norm = LayerNorm(param_shape=(self.num_kv_heads,"),
    ("0.10.0", "model_executor/models/commandr.py", 79, '{"weight_loader": row_parallel_weight_loader})'),
    ("0.34.0", "model_executor/models/commandr.py", 262, "param_shape=(self.num_kv_heads, self.head_dim)"),
    ("0.10.0", "model_executor/model_loader/weight_utils.py", 644,
     "loaded_weight = loaded_weight.narrow(shard_dim, start_idx, shard_size)"),
    ("0.34.0", "model_executor/model_loader/weight_utils.py", 1619,
     "loaded_weight = loaded_weight.narrow(shard_dim, start_idx, shard_size)"),
])
def test_cited_sdist_lines(version, path, line, text):
    assert text in sdist_line(version, path, line)
