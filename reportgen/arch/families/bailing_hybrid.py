"""bailing_hybrid (inclusionAI Ling-3 / Ring-3: KDA linear layers + MLA layers + Bailing MoE), priced as vLLM builds it.

vLLM serves these checkpoints (``model_type`` bailing_hybrid, ``architectures`` BailingMoeV3ForCausalLM) with
``vllm/model_executor/models/bailing_moe_v3.py`` @055e47c28003156421365af985d676fc921cb075; transformers'
``BailingHybridForCausalLM`` is not in vLLM's registry.  vLLM has no config class of its own for
``bailing_hybrid`` (``_CONFIG_REGISTRY`` in ``vllm/foundation/integrations/transformers_utils/config.py``
@055e47c2), so ``config.*`` is what AutoConfig gives: with ``--trust-remote-code`` the checkpoint's
``configuration_bailing_moe_v3.py`` (its ``auto_map``; vLLM copies that class as ``BailingMoeV3TextConfig`` in
``transformers_utils/configs/bailing_moe_v3_vl.py`` @e80cc1bf: ``head_dim`` kept as given), else transformers'
``BailingHybridConfig``, whose ``__post_init__`` overwrites ``head_dim`` with ``qk_rope_head_dim`` -- then vLLM's
KDA projections are ``heads * qk_rope_head_dim`` wide and the checkpoint's (``heads * head_dim``) do not load
unless the two are equal.  This module prices the model that loads, i.e. vLLM with ``--trust-remote-code``:
KDA width from the config's own ``head_dim`` (transformers' ``linear_head_dim``), and every field vLLM reads whose
default differs between the two classes -- or that transformers' class lacks (``use_bias``,
``moe_shared_expert_intermediate_size``, ``no_kda_lora``) -- taken from config.json, else from the checkpoint
class's defaults as vLLM's copy states them (``REMOTE_DEFAULTS``) -- but ``max_position_embeddings``, which
must be stated (vLLM's context limit would otherwise depend on the class: 32768 / 262144).

The model (vLLM names; the loader maps the checkpoint's ``.attention.`` to ``.self_attn.``):

* ``model.word_embeddings`` (VOCAB), ``model.norm``, ``lm_head`` (ParallelLMHead, never tied: a tied config is
  refused -- vLLM would leave the head unloaded).
* per layer ``input_layernorm``, mixer, ``post_attention_layernorm``, MLP.  Mixer by vLLM's ``_is_kda_layer``:
  KDA unless ``(i + 1) % layer_group_size == 0`` or ``i >= L // G * G`` (trailing layers are MLA) -- ``layer_types``
  is ignored by vLLM, so a config whose ``layer_types`` says otherwise is refused.
* KDA (``BailingMoeV3KimiDeltaAttention``; ``no_kda_lora`` must be true, vLLM raises otherwise):
  ``qkvb_proj`` = q/k/v (``P = heads * head_dim`` each) + b (``heads``) COLUMN, ``f_proj`` / ``g_proj``
  (hidden -> P) COLUMN, ``q/k/v_conv1d`` ``(P, 1, short_conv_kernel_size)``, ``dt_bias`` ``(P,)``, ``A_log``
  ``(1, 1, heads, 1)`` -- float32, split by heads --, gated ``o_norm`` (head_dim) REPLICATED, ``o_proj`` ROW:
  ``mixers.kda_mixer(low_rank=False)``.  State: vLLM's ``kda_state_shape(tp, heads, head_dim, conv)``
  (``get_mamba_state_shape_from_config``; mamba_utils.py @055e47c2), recurrent state float32.
* MLA (``BailingMoeV3MLAAttention``): ``q_proj`` COLUMN or (``q_lora_rank``) ``fused_qkv_a_proj`` REPLICATED
  (``disable_tp``) + ``q_a_layernorm`` + ``q_b_proj`` COLUMN; ``kv_a_proj_with_mqa`` REPLICATED,
  ``kv_a_layernorm``, ``kv_b_proj`` COLUMN, no biases (``attention_bias`` refused), an attention gate ``g_proj``
  COLUMN of ``heads`` (``gated_attention_proj_granularity_type`` head_wise) or ``heads * v_head_dim``
  (element_wise) rows, none otherwise, and ``dense`` (the output projection) ROW.  No q/k norms (a
  checkpoint's ``use_qk_norm`` weights are not loaded).  KV: one latent of ``kv_lora_rank + qk_rope_head_dim``.
  Rotary: ``get_rope(qk_rope_head_dim, max_position_embeddings, rope_parameters)`` with
  ``partial_rotary_factor`` removed (vLLM's ``_build_rope_parameters``); no DeepSeek-YaRN remapping.
* MLP: ``BailingMoeV3MoE`` where ``num_experts`` is set and ``i >= first_k_dense_replace`` (``mlp_layer_types``
  ignored; refused when it disagrees), else a SwiGLU of ``intermediate_size``.  MoE: ``gate.weight`` ``(E, H)``
  and ``gate.expert_bias`` ``(E,)``, both float32 ``nn.Parameter``s -- the bias priced in bytes but, as for
  every correction bias here (mimo_v2_flash, step3p7), not in the parameter count (``allocated_only``:
  transformers keeps it as a buffer, ``e_score_correction_bias``); routed experts
  (FusedMoE, no bias) of ``moe_intermediate_size``; a shared-expert SwiGLU of
  ``moe_shared_expert_intermediate_size * num_shared_experts`` (built even when that is 0).  Every SwiGLU
  (dense and shared) has biases iff ``use_bias``.
* MTP layers (``num_nextn_predict_layers``) are dropped by vLLM's loader: not counted.

Refused where vLLM raises or builds what is not priced here: ``architectures`` without BailingMoeV3ForCausalLM
(``BailingHybridForCausalLM`` alone: not registered, not Transformers-backend compatible); ``no_kda_lora`` not true; a ``linear_head_dim``
other than ``head_dim`` (a config saved by transformers: the KDA weights would not load); a block-FP8
``quantization_config`` (vLLM pads the shared experts' width to ``tp x lcm(block)`` per rank, and may store
routed experts as MXFP4: not modelled); tied embeddings; ``attention_bias``.

How the transformers reading differs (its meta-device model is a different model from the same config):
transformers' KDA is ``linear_head_dim`` wide too, but it has no shared-expert width field (it uses
``moe_intermediate_size * num_shared_experts``), no MLP biases, places full-attention layers by ``layer_types``
(default ``(i + 1) % layer_group_size == 0``: trailing layers KDA) and always gates attention per head.
Checked against a meta-device tree transcribed from vLLM's modules: ``tests/test_oracle_bailing_hybrid.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reportgen.arch import blocks as B
from reportgen.arch.errors import ConfigError, Unsupported
from reportgen.arch.families.mla_moe import mla_attention, refuse_attention_bias, set_mla_facts
from reportgen.arch.fields import Fields, check_int
from reportgen.arch.mixers import kda_mixer, state_layer
from reportgen.arch.rope import cache_rows, rope_parameters
from reportgen.arch.spec import AttentionKind, Component as C, LayerKV, ModelSpec, Shard as S, Tensor

HANDLES = ("linear_conv_kernel_dim",)
ARCHITECTURE = "BailingMoeV3ForCausalLM"
# the checkpoint's configuration_bailing_moe_v3.py defaults (vLLM's copy, BailingMoeV3TextConfig in
# transformers_utils/configs/bailing_moe_v3_vl.py @e80cc1bf) for the fields vLLM reads whose transformers
# BailingHybridConfig default differs or is missing; the fields both classes default alike are read through
# transformers' parse (vocab 157184, num_shared_experts 1, kv_lora_rank 512, q_lora_rank null,
# qk_rope / qk_nope / v_head_dim 64 / 128 / 128, short_conv_kernel_size 4, tie_word_embeddings false)
REMOTE_DEFAULTS: dict[str, Any] = {"intermediate_size": 5120, "moe_intermediate_size": 512, "head_dim": 128,
                                   "num_experts": 256, "num_experts_per_tok": 8, "first_k_dense_replace": 1,
                                   "layer_group_size": 5, "use_bias": False,
                                   "moe_shared_expert_intermediate_size": 512, "no_kda_lora": False}
GATE_ROWS = {"head_wise": lambda heads, v: heads, "element_wise": lambda heads, v: heads * v}


def is_kda_layer(i: int, group: int, n_layers: int) -> bool:
    """vLLM ``_is_kda_layer``: the last layer of each group and every layer past the last whole group are MLA."""
    return not ((i + 1) % group == 0 or i >= n_layers // group * group)


def remote(raw: Mapping[str, Any], key: str) -> Any:
    """A field as vLLM sees it through the checkpoint's config class: the config's value, else its default."""
    value = raw.get(key)
    return REMOTE_DEFAULTS[key] if value is None else value


def remote_int(raw: Mapping[str, Any], key: str, lo: int = 1) -> int:
    return check_int(key, remote(raw, key), lo, 1 << 40, False)


def precheck(raw: Mapping[str, Any]) -> None:
    """What vLLM raises on, and the fields transformers' parse does not see as vLLM does, before it parses."""
    archs = raw.get("architectures") or ()
    if archs and ARCHITECTURE not in archs:
        raise Unsupported(f"bailing_hybrid with architectures {list(archs)}: vLLM serves these checkpoints only as "
                          f"{ARCHITECTURE} (registry @055e47c2), and transformers' BailingHybridForCausalLM is not "
                          "Transformers-backend compatible (is_backend_compatible() is False): vLLM refuses it")
    if remote(raw, "no_kda_lora") is not True:
        raise Unsupported("bailing_hybrid without no_kda_lora: true: vLLM's BailingMoeV3KimiDeltaAttention raises "
                          "(\"BailingMoeV3 KDA currently expects no_kda_lora=True\")")
    if raw.get("max_position_embeddings") is None:
        raise Unsupported("bailing_hybrid without max_position_embeddings: vLLM's context limit and rotary cache "
                          "then depend on which config class parses it (the checkpoint's 32768, transformers' "
                          "262144); not modelled")
    check_int("max_position_embeddings", raw["max_position_embeddings"], 1, 1 << 40, False)
    for key in ("intermediate_size", "moe_intermediate_size", "head_dim", "num_experts", "num_experts_per_tok",
                "layer_group_size"):
        remote_int(raw, key)
    remote_int(raw, "first_k_dense_replace", lo=0)
    remote_int(raw, "moe_shared_expert_intermediate_size", lo=0)
    lhd = raw.get("linear_head_dim")
    if lhd is not None and lhd != remote(raw, "head_dim"):
        raise Unsupported(f"bailing_hybrid with linear_head_dim {lhd} != head_dim {remote(raw, 'head_dim')} (a config "
                          "written by transformers' BailingHybridConfig, which rewrites head_dim): vLLM sizes the KDA "
                          "layers by head_dim, the checkpoint's KDA weights are linear_head_dim wide and would not load")
    if not isinstance(remote(raw, "use_bias"), bool):
        raise ConfigError("use_bias", f"must be true or false, got {raw['use_bias']!r}")
    qc = raw.get("quantization_config")
    if isinstance(qc, Mapping) and qc.get("weight_block_size") is not None:
        raise Unsupported("bailing_hybrid with a block-FP8 quantization_config: vLLM pads the shared experts' "
                          "width to tp x lcm(weight_block_size) per rank (and may store routed experts as MXFP4); "
                          "not modelled")


def _gate(ts: list[Tensor], i: int, name: str, rows: int, cols: int | None, *, allocated_only: bool = False) -> None:
    """A float32 parameter of the MoE gate (vLLM ``BailingMoeV3Gate``): replicated, never quantized."""
    shape = (rows,) if cols is None else (rows, cols)
    ts.append(Tensor(name, shape, S.REPLICATED, C.ROUTER, i, dtype_bytes=4, allocated_only=allocated_only))


def build(f: Fields, spec: ModelSpec) -> None:
    raw = f.raw
    hidden, n_layers = f.int("hidden_size"), f.int("num_hidden_layers")
    n_heads, vocab = f.int("num_attention_heads"), f.int("vocab_size")
    k_dim = remote_int(raw, "head_dim")      # the config's own (transformers' linear_head_dim), not its head_dim
    conv = f.int("short_conv_kernel_size")
    group = remote_int(raw, "layer_group_size")
    if f.flag("tie_word_embeddings"):
        raise Unsupported("bailing_hybrid with tie_word_embeddings: vLLM's BailingMoeV3ForCausalLM always builds its "
                          "own lm_head and loads lm_head.weight, which a tied checkpoint does not have")
    refuse_attention_bias(f)
    kda = [is_kda_layer(i, group, n_layers) for i in range(n_layers)]
    types = f.str_list("layer_types")
    if raw.get("layer_types") is not None and types != ["linear_attention" if k else "full_attention" for k in kda]:
        raise Unsupported("bailing_hybrid layer_types: vLLM places the MLA layers by layer_group_size (the last "
                          "of each group and the trailing layers) and ignores layer_types, which disagree here")
    n_exp = remote_int(raw, "num_experts")
    k_dense = remote_int(raw, "first_k_dense_replace", lo=0)
    moe = [i >= k_dense for i in range(n_layers)]
    if raw.get("mlp_layer_types") is not None and [t == "sparse" for t in f.str_list("mlp_layer_types")] != moe:
        raise Unsupported("bailing_hybrid mlp_layer_types: vLLM places the MoE layers by first_k_dense_replace and "
                          "ignores mlp_layer_types, which disagree here")
    q_lora, kv_lora = f.opt_int("q_lora_rank"), f.int("kv_lora_rank")
    rope, nope, v_dim = f.int("qk_rope_head_dim"), f.int("qk_nope_head_dim", lo=0), f.int("v_head_dim")
    inter, moe_inter = remote_int(raw, "intermediate_size"), remote_int(raw, "moe_intermediate_size")
    n_shared = f.int("num_shared_experts", lo=0)
    shared_inter = remote_int(raw, "moe_shared_expert_intermediate_size", lo=0) * n_shared
    bias = remote(raw, "use_bias")
    gate_kind = raw.get("gated_attention_proj_granularity_type")
    gate_rows = GATE_ROWS[gate_kind](n_heads, v_dim) if gate_kind in GATE_ROWS else 0
    k = remote_int(raw, "num_experts_per_tok")
    if any(moe):
        if k > n_exp:
            raise ConfigError("num_experts_per_tok", f"{k} exceeds the {n_exp} routed experts")
        spec.num_experts, spec.experts_per_token, spec.num_shared_experts = n_exp, k, n_shared

    ts = spec.tensors
    layers: list[LayerKV] = []
    B.embedding(ts, vocab, hidden, name="model.word_embeddings")
    for i in range(n_layers):
        p = f"model.layers.{i}"
        a = f"{p}.self_attn"
        B.norm(ts, f"{p}.input_layernorm", hidden, i)
        if kda[i]:
            layers.append(state_layer(kda_mixer(ts, i, a, hidden, heads=n_heads, head_dim=k_dim, conv_kernel=conv,
                                                 low_rank=False, fp32_bytes=4)))
        else:
            mla_attention(ts, a, i, hidden, n_heads, q_lora, kv_lora, rope, nope, v_dim, False, o_name="dense")
            if gate_rows:
                B.linear(ts, f"{a}.g_proj", hidden, gate_rows, S.COLUMN, C.ATTENTION, i)
            layers.append(LayerKV(AttentionKind.MLA, 1, kv_lora + rope, 0))
        B.norm(ts, f"{p}.post_attention_layernorm", hidden, i)
        if moe[i]:
            _gate(ts, i, f"{p}.mlp.gate.weight", n_exp, hidden)
            _gate(ts, i, f"{p}.mlp.gate.expert_bias", n_exp, None, allocated_only=True)
            B.experts(ts, i, f"{p}.mlp.experts", hidden, moe_inter, n_exp)
            B.gated_mlp(ts, i, f"{p}.mlp.shared_experts", hidden, shared_inter, C.SHARED_EXPERTS, bias=bias)
        else:
            B.gated_mlp(ts, i, f"{p}.mlp", hidden, inter, C.DENSE_MLP, bias=bias)
    B.norm(ts, "model.norm", hidden, None)
    B.lm_head(ts, vocab, hidden, tied=False)
    set_mla_facts(spec, f, hidden, vocab, n_layers, n_heads, nope, rope, False, k)
    spec.max_position_embeddings = raw["max_position_embeddings"]
    spec.layers_kv = layers
    if any(not x for x in kda):
        rp = dict((rope_parameters(f) or {"": {"rope_type": "default"}}).get("", {"rope_type": "default"}))
        rp.pop("partial_rotary_factor", None)
        spec.rope_caches = ((cache_rows(rp, spec.max_position_embeddings), rope, 0),)
    else:
        spec.rope_caches = ()
    if k_dim != rope:
        spec.notes.append(f"KDA layers priced {n_heads} x {k_dim} wide (the config's head_dim, what the checkpoint "
                          "holds): vLLM builds that with --trust-remote-code; with transformers' BailingHybridConfig "
                          f"its config.head_dim is qk_rope_head_dim ({rope}) and the KDA weights would not load")
    n_mtp = raw.get("num_nextn_predict_layers") or raw.get("num_mtp_layers") or 0
    if n_mtp:
        spec.notes.append(f"{n_mtp} MTP layer(s) are dropped by vLLM's BailingMoeV3ForCausalLM loader: not counted")
