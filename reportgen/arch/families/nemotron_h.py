"""nemotron_h (NVIDIA Nemotron-H, Nemotron-3 Nano / Super): Mamba-2, attention, MLP and MoE blocks.

Follows vLLM ``vllm/model_executor/models/nemotron_h.py`` (read at commit
00b08dc44519a82cbdd9061d92d1226985094622) and transformers 5.24 ``modeling_nemotron_h.py``.

Every layer is ONE pre-normed block (``norm`` RMSNorm + ``mixer``) of the kind its letter in
``hybrid_override_pattern`` (or entry of ``layers_block_type``) names:

* ``M`` / linear_attention: Mamba-2 mixer (``arch/mixers.py``) of ``mamba_num_heads`` heads of
  ``mamba_head_dim``, ``n_groups`` groups, ``ssm_state_size``, ``conv_kernel``; ``use_bias`` on
  in/out proj, ``use_conv_bias`` on the conv.  Holds a ``mamba2`` state, no tokens.
* ``*`` / full_attention: GQA q/k/v/o without biases (both codes ignore ``attention_bias``),
  ``head_dim`` from the config.  Full attention, no RoPE.
* ``-`` / mlp: ReLU^2 ``up_proj`` (COLUMN) / ``down_proj`` (ROW), ``mlp_bias``.
* ``E`` / moe: router ``gate`` ``E x H`` (vLLM's ``e_score_correction_bias`` is a transformers
  buffer: not counted, as for DeepSeek-V3), ``n_routed_experts`` NON-gated experts (``up_proj``
  ``(I, H')`` and ``down_proj`` ``(H', I)``, H' = ``moe_latent_size`` or hidden), one shared expert
  of ``moe_shared_expert_intermediate_size``, and with ``moe_latent_size`` the replicated
  ``fc1_latent_proj`` / ``fc2_latent_proj`` (H <-> H', ``mlp_bias``).

vLLM never ties ``lm_head`` (ParallelLMHead) and neither does transformers (``_tied_weights_keys``
empty), so the head is always counted.  MTP layers (``num_nextn_predict_layers``, ``mtp.*``) are
skipped by both loaders (vLLM maps ``mtp`` to None): not counted, said in ``spec.notes``.

Refused where the two codes build different models: ``n_shared_experts`` other than 1 (vLLM
multiplies the shared width by it, transformers ignores it), ``mlp_bias`` with MoE layers (vLLM's
shared expert has no bias, transformers' has), a ``sliding_window`` (vLLM windows the attention
layers, transformers does not).

SSM state dtype: vLLM (``NemotronHForCausalLMConfig``) replaces ``--mamba-ssm-cache-dtype auto`` by
the config's ``mamba_ssm_cache_dtype``, else float32 -- set on every state geometry (``StateGeometry.ssm_dtype``, which the estimator prices) and reported as ``spec.state_ssm_dtype``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from reportgen.arch import blocks as B
from reportgen.arch.errors import ConfigError, Unsupported
from reportgen.arch.families.common import geometry, set_moe, set_scalars
from reportgen.arch.fields import Fields
from reportgen.arch.mixers import mamba2_mixer, state_layer
from reportgen.arch.spec import AttentionKind, Component as C, LayerKV, ModelSpec, Shard as S

PATTERN_KINDS = {"M": "linear_attention", "*": "full_attention", "-": "mlp", "E": "moe"}
DTYPE_NAMES = {"float32", "float16", "bfloat16"}


def precheck(raw: Mapping[str, Any]) -> None:
    """The layer pattern against ``num_hidden_layers``, before transformers (which only warns)."""
    pattern = raw.get("hybrid_override_pattern")
    n = raw.get("num_hidden_layers")
    if pattern is not None:
        if not isinstance(pattern, str) or not pattern:
            raise ConfigError("hybrid_override_pattern", "must be a non-empty string of M, *, - and E")
        for i, ch in enumerate(pattern):
            if ch not in PATTERN_KINDS:
                raise ConfigError("hybrid_override_pattern",
                                  f"unknown layer kind {ch!r} at layer {i} (M mamba, * attention, - MLP, E MoE)")
    blocks = raw.get("layers_block_type")
    if blocks is not None and not (isinstance(blocks, list) and blocks and all(isinstance(b, str) for b in blocks)):
        raise ConfigError("layers_block_type", "must be a non-empty list of layer-type names")
    if pattern is None and blocks is None:
        return
    length = len(pattern) if pattern is not None else len(blocks)
    name = "hybrid_override_pattern" if pattern is not None else "layers_block_type"
    if isinstance(n, int) and not isinstance(n, bool) and n != length:
        raise ConfigError(name, f"has {length} layers for num_hidden_layers {n}")
    if pattern is not None and blocks is not None and len(blocks) != len(pattern):
        raise ConfigError("layers_block_type", f"has {len(blocks)} entries, hybrid_override_pattern {len(pattern)}")


def build(f: Fields, spec: ModelSpec) -> None:
    kinds = f.str_list("layers_block_type")  # transformers derives it from hybrid_override_pattern
    if not kinds:
        raise f.err("hybrid_override_pattern", "is missing (no layers)")
    pattern = f.raw.get("hybrid_override_pattern")
    if pattern is not None and f.raw.get("layers_block_type") is not None \
            and [PATTERN_KINDS[c] for c in pattern] != kinds:
        raise f.err("layers_block_type", "disagrees with hybrid_override_pattern")
    if f.get("sliding_window") is not None:
        raise Unsupported("nemotron_h with sliding_window: vLLM windows its attention layers, transformers does not")
    g = geometry(f)
    hd = f.int("head_dim")
    n_layers = len(kinds)
    hidden = g.hidden

    m_heads, m_hd = f.int("mamba_num_heads"), f.int("mamba_head_dim")
    groups, d_state, ck = f.int("n_groups"), f.int("ssm_state_size"), f.int("conv_kernel")
    if "linear_attention" in kinds and m_heads % groups:
        raise f.err("n_groups", f"{groups} does not divide mamba_num_heads {m_heads}")
    has_moe = "moe" in kinds
    mlp_bias = f.flag("mlp_bias")
    if has_moe:
        n_exp = f.int("n_routed_experts")
        set_moe(spec, f, n_exp, shared=1)
        if f.get("n_shared_experts") != 1:
            raise Unsupported(f"nemotron_h with n_shared_experts={f.get('n_shared_experts')!r}: vLLM scales the "
                              "shared expert by it, transformers always builds one")
        if mlp_bias:
            raise Unsupported("nemotron_h with mlp_bias and MoE layers: vLLM's shared expert has no bias, "
                              "transformers' has")
        moe_inter = f.int("moe_intermediate_size")
        shared_inter = f.int("moe_shared_expert_intermediate_size")
        latent = f.opt_int("moe_latent_size")
    ssm_dtype = f.get("mamba_ssm_cache_dtype") or "float32"
    if ssm_dtype not in DTYPE_NAMES:
        raise f.err("mamba_ssm_cache_dtype", f"must be one of {sorted(DTYPE_NAMES)}, got {ssm_dtype!r}")

    ts = spec.tensors
    B.embedding(ts, g.vocab, hidden, "model.embed_tokens")
    layers: list[LayerKV] = []
    for i, kind in enumerate(kinds):
        p = f"model.layers.{i}"
        B.norm(ts, f"{p}.norm", hidden, i)
        if kind == "linear_attention":
            geo = mamba2_mixer(ts, i, f"{p}.mixer", hidden, heads=m_heads, head_dim=m_hd, groups=groups,
                               state=d_state, conv_kernel=ck, conv_bias=f.flag("use_conv_bias", True),
                               proj_bias=f.flag("use_bias"))
            layers.append(state_layer(replace(geo, ssm_dtype=ssm_dtype)))   # vLLM's NemotronH override
        elif kind == "full_attention":
            B.attention(ts, i, f"{p}.mixer", hidden, g.n_heads, g.n_kv, hd)
            layers.append(LayerKV(AttentionKind.FULL, g.n_kv, hd, hd))
        elif kind == "mlp":
            B.plain_mlp(ts, i, f"{p}.mixer", hidden, f.int("intermediate_size"), C.DENSE_MLP, bias=mlp_bias,
                        names=("up_proj", "down_proj"))
            layers.append(LayerKV(AttentionKind.NONE))
        elif kind == "moe":
            _moe(ts, i, f"{p}.mixer", hidden, n_exp, moe_inter, shared_inter, latent)
            layers.append(LayerKV(AttentionKind.NONE))
        else:  # transformers validates the names; kept for safety
            raise f.err("layers_block_type", f"unknown layer kind {kind!r} at layer {i}")
    B.norm(ts, "model.norm_f", hidden, None)
    B.lm_head(ts, g.vocab, hidden, tied=False)
    set_scalars(spec, f, g)
    spec.num_layers = n_layers
    spec.head_dim = hd
    spec.tie_word_embeddings = False
    spec.rotary_dim = 0
    spec.rope_caches = ()  # no RoPE anywhere (NemotronHAttention has no rotary embedding)
    spec.layers_kv = layers
    spec.state_ssm_dtype = ssm_dtype
    n_mtp = f.get("num_nextn_predict_layers") or 0
    if n_mtp:
        spec.notes.append(f"{n_mtp} MTP layer(s) (mtp.*) are skipped by vLLM's NemotronHForCausalLM loader: "
                          "not counted")


def _moe(ts, i: int, p: str, hidden: int, n_exp: int, inter: int, shared_inter: int, latent: int | None) -> None:
    width = latent if latent is not None else hidden
    B.router(ts, i, f"{p}.gate", hidden, n_exp)
    B.linear(ts, f"{p}.experts.up_proj", width, inter, S.EXPERT, C.ROUTED_EXPERTS, i, count=n_exp)
    B.linear(ts, f"{p}.experts.down_proj", inter, width, S.EXPERT, C.ROUTED_EXPERTS, i, count=n_exp)
    B.plain_mlp(ts, i, f"{p}.shared_experts", hidden, shared_inter, C.SHARED_EXPERTS, bias=False,
                names=("up_proj", "down_proj"))
    if latent is not None:
        B.linear(ts, f"{p}.fc1_latent_proj", hidden, latent, S.REPLICATED, C.OTHER, i)
        B.linear(ts, f"{p}.fc2_latent_proj", latent, hidden, S.REPLICATED, C.OTHER, i)

