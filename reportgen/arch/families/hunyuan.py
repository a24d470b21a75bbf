"""Hunyuan v1 (hunyuan_v1_dense, hunyuan_v1_moe): GQA attention with per-head q/k norms, optional MoE.

Per vLLM release: 0.10 - 0.28 build it with the native ``vllm/model_executor/models/hunyuan_v1.py`` (read at
commit 00f8d4456f506c4885a122c993796a6abc319af8); 0.29 on map ``HunYuanDenseV1ForCausalLM`` /
``HunYuanMoEV1ForCausalLM`` to the Transformers backend (vllm 0.29.0 sdist registry.py:687-688:
``TransformersForCausalLM`` / ``TransformersMoEForCausalLM``), which builds transformers 5.24
``modeling_hunyuan_v1_dense.py`` / ``modeling_hunyuan_v1_moe.py`` itself (same per-rank shards: fused QKV, rowwise
o_proj, GLU-fused MLPs / shared MLP, FusedMoE experts, replicated per-head norms and router; no get_rope
cache -- estimate/tf_backend.py).  What is built here is transformers' model.  A config on which the native file
builds something else is priced for 0.29 on only: ``served_from = ((0, 29), the difference)`` (bias / mlp_bias,
use_qk_norm false, the shared MLP width below); what vLLM builds differently from transformers on every release is
refused -- e.g. ``moe_intermediate_size`` != ``intermediate_size``: the backend's FusedMoE reads
``moe_intermediate_size`` first (vllm 0.29.0 sdist transformers/moe.py:170-173), transformers' experts take
``intermediate_size``:

* q/k/v/o bias = ``attention_bias`` (vLLM also reads ``bias``; its dense MLP reads ``mlp_bias``, which
  transformers ignores); per-head ``query_layernorm`` / ``key_layernorm`` exist in transformers always and in
  vLLM only with ``use_qk_norm`` -> without it: 0.29 on only;
* ``head_dim``: vLLM's ``HunYuanAttention`` takes it when set, else ``attention_head_dim`` when the config has it,
  else hidden // heads (0.10.0 hunyuan_v1.py:157-162, 0.28.0 :178-183); transformers' attention reads
  ``config.head_dim`` -- its class default None -- and raises TypeError at ``self.head_dim**-0.5``
  (modeling_hunyuan_v1_*.py:161-163), so without it 0.10 - 0.28 build the native model (priced) and 0.29 on
  cannot build it: ``from_release`` sets ``unsupported_reason`` from 0.29 (refused outright when the native file
  builds something else as well);
* cross-layer attention (``use_cla`` with ``cla_share_factor`` f > 1; vLLM's ``_get_cla_factor`` reads f only with
  ``use_cla``, default 1): no vLLM release serves it (``CLA_REASON``, per release range).  Natively layer i with
  ``i % f != 0`` is a ``HunYuanCrossAttention`` -- a ``q_proj`` of hidden x hidden, no k/v projections, reading the
  K/V of the layer before through an ``Attention`` of ``attn_type=ENCODER_DECODER`` (vllm 0.28.0 sdist
  hunyuan_v1.py:298-329, 489-524, 651-667) -- and V1 has no cache path for such a layer in a decoder-only model:
  0.10.0 - 0.10.1.1 ``get_kv_cache_spec`` raises NotImplementedError; 0.10.2 - 0.11.0 give it a
  ``CrossAttentionSpec`` whose blocks are sized by encoder tokens (a text request has none) and whose manager raises
  NotImplementedError("CrossAttentionManager does not support caching") on every request when prefix caching is
  on (the default); 0.11.1 - 0.28 ``Attention.get_kv_cache_spec`` asserts ``attn_type == DECODER``.  From 0.29 no
  vLLM code reads ``use_cla`` for these architectures (the Transformers backend builds transformers' class: k/v
  projections and a KV cache on every layer, which a CLA checkpoint does not have weights for).  ``use_cla`` with
  f = 1 (or one layer) builds no cross layer natively and transformers ignores the flag -> priced as without it;
* ``hidden_act`` other than silu: vLLM's ``HunYuanMLP`` (the dense MLP, and the shared MLP of ``use_mixed_mlp_moe``)
  raises ``ValueError("Unsupported activation: ... Only silu is supported for now.")`` (0.10.0 hunyuan_v1.py:112,
  0.28.0 :136) -> 0.29 on only, where transformers' MLPs apply ``ACT2FN[hidden_act]`` (no parameters; the
  backend's GLU fuser keeps an activation without an ``...AndMul`` form unfused -- transformers/fusers/glu.py:
  102-117, 169-170) and the backend's FusedMoE experts compute silu whatever ``hidden_act`` says (0.29.0
  transformers/moe.py:211-215; a note).  An activation transformers' ``ACT2FN`` does not have cannot be built by
  either -> refused with both errors;
* hunyuan_v1_moe with ``num_experts == 1``: vLLM's ``_is_moe`` wants ``num_experts > 1``, so the native file builds
  dense ``HunYuanMLP`` layers and, from 0.11.0, ``HunYuanMoEV1ForCausalLM`` raises ``RuntimeError("No HunYuanMoE
  layer found in model.layers.")`` (0.11.0 hunyuan_v1.py:949, 0.28.0 :1001); 0.10.x (``HunYuanMoEV1ForCausalLM``
  a plain ``HunYuanV1Base``, 0.10.0 :936) builds the dense layers, whose ``load_weights`` finds no ``mlp.gate``
  parameter for the checkpoint's router ``mlp.gate.wg.weight`` (0.10.0 :833-836, a KeyError) -> 0.29 on only, where
  the backend builds transformers' MoE block with its one expert (router ``1 x H``, FusedMoE of 1 expert, the
  shared MLP);
* MoE (transformers: every layer; vLLM: when ``num_experts > 1``): router ``gate.wg`` ``E x H`` (replicated),
  ``num_experts`` experts and one shared MLP, all of ``intermediate_size`` in transformers; vLLM sizes the
  experts by ``moe_intermediate_size`` when set (natively and, 0.29 on, the backend's FusedMoE) -> refused
  when it differs; the shared MLP by ``intermediate_size * num_shared_expert`` only with
  ``use_mixed_mlp_moe`` -> every release when those agree (Hunyuan-A13B's do), 0.29 on only otherwise;
* ``moe_topk`` an int, or a list read per layer (transformers 5.25's ``HunYuanMoEV1Config`` types it
  ``int | list[int]``, its MoE block takes ``moe_topk[layer_idx]``; no parameter depends on it).  vLLM takes
  layer i's top-k from the list in every release 0.10 - 0.34: natively (``HunYuanSparseMoeBlock``,
  "Get layer_id topk if config.moe_topk is a list" -- vllm 0.10.0 sdist hunyuan_v1.py:367-373, 0.28.0
  hunyuan_v1.py:384-390, asserting ``len(config.moe_topk) > layer_id``) and, once 0.29 moved the
  architecture to the Transformers backend (registry.py: ``HunYuanMoEV1ForCausalLM`` ->
  ``TransformersMoEForCausalLM``), through ``maybe_per_layer(top_k, layer_idx)`` (vllm 0.29.0 sdist
  transformers/moe.py:168,277; 0.34.0 transformers/moe.py:246,352).  A list that differs between layers sets
  ``experts_per_token`` to its largest entry -- the MoE layer whose workspaces peak in the profile run, also
  vLLM's own ``get_num_experts_per_token`` reading of a list (0.34.0 model_arch_config_convertor.py:195-196)
  -- and ``experts_per_token_by_layer`` (active parameters per layer), with a note.  A list shorter than
  ``num_hidden_layers`` or an entry outside 1..``num_experts`` is a ConfigError naming it;
* lm_head tied per ``tie_word_embeddings``; KV: full attention everywhere.
"""

from __future__ import annotations

from dataclasses import replace

from reportgen.arch import blocks as B
from reportgen.arch.errors import Unsupported
from reportgen.arch.families.common import decoder_stack, geometry, gqa_attention
from reportgen.arch.fields import Fields
from reportgen.arch.spec import Component as C, ModelSpec, Tensor

# the first vLLM release that builds HunYuanDenseV1ForCausalLM / HunYuanMoEV1ForCausalLM through the Transformers
# backend (vllm 0.29.0 sdist registry.py:687-688; estimate/tf_backend.py BACKEND_FROM)
BACKEND_RELEASE = (0, 29)

# cross-layer attention per vLLM release (module docstring; tests/test_hunyuan_cla_versions.py reads the lines)
CLA_REASON = ("no vLLM release serves cross-layer attention for it -- natively the sharing layers are Attention "
              "layers of attn_type ENCODER_DECODER (hunyuan_v1.py HunYuanCrossAttention), for which vLLM 0.10.0 - "
              "0.10.1 raise NotImplementedError in gpu_model_runner.get_kv_cache_spec, 0.10.2 - 0.11.0 build a "
              "CrossAttentionSpec sized by encoder tokens whose manager raises NotImplementedError(\"CrossAttentionManager "
              "does not support caching\") on every request with prefix caching on (the default), and 0.11.1 - 0.28 "
              "fail Attention.get_kv_cache_spec's assert attn_type == AttentionType.DECODER; from 0.29 vLLM has no "
              "cross-layer attention for it (the Transformers backend builds transformers' class, which gives every "
              "layer its own k/v projections and KV cache; use_cla is read by no vLLM code for it)")


def _check(f: Fields, family: str, native_only: list[str]) -> None:
    for name in ("bias", "mlp_bias"):
        if f.raw.get(name):
            native_only.append(f"{family} with {name}=true: vLLM's hunyuan_v1.py loads that bias, transformers "
                               "does not")
    if not f.flag("use_qk_norm"):
        native_only.append(f"{family} without use_qk_norm: transformers always builds the per-head q/k norms, "
                           "vLLM's hunyuan_v1.py only with use_qk_norm")
    factor = cla_factor(f)
    if factor > 1 and f.int("num_hidden_layers") > 1:
        raise Unsupported(f"{family} with use_cla and cla_share_factor {factor}: {CLA_REASON}")
    act = f.get("hidden_act")
    if act != "silu":
        native = (f"vLLM's hunyuan_v1.py (0.10 - 0.28) raises ValueError(\"Unsupported activation: {act}. Only silu "
                  "is supported for now.\") building its HunYuanMLP")
        from transformers.activations import ACT2FN
        if not isinstance(act, str) or act not in ACT2FN:
            raise Unsupported(f"{family} with hidden_act {act!r}: {native}; transformers' ACT2FN has no such "
                              "activation (KeyError), so the Transformers backend (0.29 on) cannot build it either")
        if family == "hunyuan_v1_dense" or f.raw.get("use_mixed_mlp_moe"):
            native_only.append(f"{family} with hidden_act {act!r}: {native}")


def cla_factor(f: Fields) -> int:
    """vLLM's ``_get_cla_factor``: ``cla_share_factor`` (default 1) when ``use_cla``, else 1."""
    if not f.flag("use_cla"):
        return 1
    factor = f.get("cla_share_factor", 1)
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        # vLLM's ``layer_id % cla_factor`` (hunyuan_v1.py) needs a positive integer
        raise f.err("cla_share_factor", f"must be a positive integer, got {factor!r}")
    return factor


def _moe_widths(f: Fields, inter: int, n_layers: int, native_only: list[str]) -> tuple[int, tuple[int, ...]]:
    """(largest top-k, per-layer top-k or ()); experts / shared MLP widths vLLM's native file builds
    differently from transformers' are added to ``native_only``."""
    n_exp = f.int("num_experts")
    if n_exp == 1:
        native_only.append("hunyuan_v1_moe with num_experts 1: vLLM's hunyuan_v1.py builds no MoE block (_is_moe "
                           "wants num_experts > 1) -- 0.11 - 0.28 raise RuntimeError(\"No HunYuanMoE layer found in "
                           "model.layers.\"), and 0.10's dense MLP layers have no mlp.gate parameter for the "
                           "checkpoint's router mlp.gate.wg.weight (load_weights: params_dict[name], KeyError)")
    moe_inter = f.get("moe_intermediate_size")
    if isinstance(moe_inter, list) and moe_inter and all(v == inter for v in moe_inter):
        moe_inter = inter
    if moe_inter is not None and moe_inter != inter:
        # every release: natively and through the backend (vllm 0.29.0 sdist transformers/moe.py:170-173 reads
        # moe_intermediate_size before intermediate_size for its FusedMoE) vLLM's experts are not transformers'
        raise Unsupported("hunyuan_v1_moe with moe_intermediate_size != intermediate_size: vLLM sizes the experts "
                          "by it (hunyuan_v1.py natively, the Transformers backend's FusedMoE from 0.29), "
                          "transformers by intermediate_size")
    shared = f.get("num_shared_expert", 1)
    if isinstance(shared, list) and shared and all(v == shared[0] for v in shared):
        shared = shared[0]
    if not f.raw.get("use_mixed_mlp_moe") or shared != 1:
        native_only.append("hunyuan_v1_moe: transformers always adds one shared MLP of intermediate_size, vLLM's "
                           "hunyuan_v1.py one of intermediate_size * num_shared_expert with use_mixed_mlp_moe only; "
                           "these differ")
    topk = f.get("moe_topk")
    if not isinstance(topk, (list, tuple)):
        if not _is_topk(topk, n_exp):
            raise f.err("moe_topk", f"must be an integer in 1..{n_exp}, got {topk!r}")
        return topk, ()
    # per layer: layer i routes to moe_topk[i] (vLLM reads entries 0..num_hidden_layers-1 and asserts the list
    # is that long; later entries are never read, as in transformers)
    if len(topk) < n_layers:
        raise f.err("moe_topk", f"has {len(topk)} entries for {n_layers} layers (vLLM's hunyuan_v1.py asserts "
                                "len(config.moe_topk) > layer_id)")
    for i, k in enumerate(topk[:n_layers]):
        if not _is_topk(k, n_exp):
            raise f.err(f"moe_topk[{i}]", f"must be an integer in 1..{n_exp}, got {k!r}")
    per_layer = tuple(topk[:n_layers])
    if len(set(per_layer)) == 1:
        return per_layer[0], ()
    return max(per_layer), per_layer


def _runs(values: tuple[int, ...]) -> str:
    """``(8, 8, 4, 4, 8)`` -> ``"layers 0-1: 8, 2-3: 4, 4: 8"``."""
    out, start = [], 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] != values[start]:
            out.append(f"{start}-{i - 1}: {values[start]}" if i - 1 > start else f"{start}: {values[start]}")
            start = i
    return "layers " + ", ".join(out)


def _is_topk(k, n_exp: int) -> bool:
    return isinstance(k, int) and not isinstance(k, bool) and 1 <= k <= n_exp


def build(f: Fields, spec: ModelSpec) -> None:
    family = f.model_type
    native_only: list[str] = []
    _check(f, family, native_only)
    g = geometry(f)
    no_head_dim = None
    if not f.get("head_dim"):
        # vLLM's HunYuanAttention: head_dim if set (and non-zero), else attention_head_dim when the config has it,
        # else hidden // heads (vllm 0.10.0 sdist hunyuan_v1.py:157-162, 0.28.0 :178-183); transformers' attention
        # takes config.head_dim -- its class default None -- and fails on it (``self.head_dim**-0.5``)
        if "attention_head_dim" in f.raw:
            if f.raw["attention_head_dim"] is None:
                raise f.err("attention_head_dim", "is null without head_dim: vLLM's HunYuanAttention takes it as the "
                                                  "head size")
            g = replace(g, head_dim=f.int("attention_head_dim", lo=1))
        no_head_dim = (f"{family} without head_dim: transformers' HunYuan attention reads config.head_dim, None, and "
                       f"raises TypeError at self.head_dim**-0.5 (transformers 5.25 modeling_{family}.py:161-163), so "
                       "vLLM's Transformers backend (0.29 on) cannot build it")
        if native_only:
            # 0.10 - 0.28 build something else, 0.29 on nothing
            raise Unsupported(f"{no_head_dim}; and vLLM 0.10 - 0.28 cannot build it as transformers would: "
                              + "; ".join(native_only))
    inter = f.int("intermediate_size")
    bias = f.flag("attention_bias")
    moe = family == "hunyuan_v1_moe"
    if moe:
        spec.num_experts = n_exp = f.int("num_experts")
        spec.experts_per_token, per_layer = _moe_widths(f, inter, g.n_layers, native_only)
        spec.num_shared_experts = 1
        if f.get("hidden_act") != "silu":
            spec.notes.append(f"hidden_act {f.get('hidden_act')!r}: vLLM's Transformers backend builds the routed experts "
                              "as a FusedMoE computing silu whatever hidden_act says (vllm 0.29.0 sdist "
                              "transformers/moe.py:211-215); the parameters do not depend on it")
        if per_layer:
            spec.experts_per_token_by_layer = per_layer
            spec.notes.append(f"per-layer moe_topk ({_runs(per_layer)}): activation and MoE workspaces priced at the "
                              f"largest, {spec.experts_per_token} (the layer that peaks in vLLM's profile run); "
                              "active parameters per layer")
    def mlp(ts: list[Tensor], i: int, p: str) -> None:
        if moe:
            B.router(ts, i, f"{p}.mlp.gate.wg", g.hidden, n_exp)
            B.experts(ts, i, f"{p}.mlp.experts", g.hidden, inter, n_exp)
            B.gated_mlp(ts, i, f"{p}.mlp.shared_mlp", g.hidden, inter, C.SHARED_EXPERTS)
        else:
            B.gated_mlp(ts, i, f"{p}.mlp", g.hidden, inter, C.DENSE_MLP)

    attention = gqa_attention(g, qkv_bias=bias, o_bias=bias, qk_norm="head",
                              qk_names=("query_layernorm", "key_layernorm"))
    decoder_stack(spec, f, g, attention=attention, mlp=mlp)
    if native_only:
        # what is built above is transformers' model, which vLLM builds from 0.29 on (Transformers backend)
        if no_head_dim:
            raise Unsupported(f"{no_head_dim}; and vLLM 0.10 - 0.28 cannot build it as transformers would: "
                              + "; ".join(native_only))
        spec.served_from = (BACKEND_RELEASE, "; ".join(native_only))
    elif no_head_dim:
        # what is built above is the native file's model (0.10 - 0.28); the backend releases cannot build it
        spec.from_release = tuple(spec.from_release) + ((BACKEND_RELEASE, "unsupported_reason", no_head_dim),)
