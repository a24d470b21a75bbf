"""falcon_h1 (TII Falcon-H1): attention and a Mamba-2 mixer side by side in EVERY layer.

Follows vLLM ``vllm/model_executor/models/falcon_h1.py`` (the stored version, commit
0189427238e6f89c55a0f85da90f330d6e0d6ae7) and transformers 5.24 ``modeling_falcon_h1.py``.

Each layer (``FalconH1ParallelHybrid``): ``input_layernorm``; ``self_attn`` (q/k/v/o, ``head_dim``
from the config else ``hidden // heads``, RoPE on ``partial_rotary_factor`` of it) and ``mamba``
(Mamba-2, ``arch/mixers.py``, intermediate ``mamba_d_ssm`` else ``mamba_expand * hidden``, gated
RMSNorm only with ``mamba_rms_norm``) read the same normed input and are summed; then
``pre_ff_layernorm`` and a SwiGLU ``feed_forward``.  Final ``final_layernorm``; lm_head tied per
``tie_word_embeddings`` (both codes).  The muP multipliers (``ssm_multipliers``' ``mup_vector`` is a
non-persistent buffer, ``mlp_multipliers``, ``key_multiplier``, ...) add no parameters.

KV and state: every layer holds BOTH an attention KV cache and a Mamba-2 state in vLLM, so its
``LayerKV`` is ``FULL`` with ``state`` set as well -- whoever prices state must read ``state`` on
every layer that has one, not only on ``STATE`` layers.

Refused where the two codes differ: vLLM's mixer gives ``out_proj`` the ``mamba_proj_bias``
(transformers: ``projectors_bias``), and vLLM builds no attention or MLP biases
(transformers: ``attention_bias`` / ``mlp_bias``).
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.errors import Unsupported
from reportgen.arch.families.common import decoder_stack, geometry
from reportgen.arch.fields import Fields
from reportgen.arch.mixers import mamba2_mixer
from reportgen.arch.spec import AttentionKind, Component as C, LayerKV, ModelSpec, Tensor

HANDLES = ("mamba_d_state", "mamba_expand")


def build(f: Fields, spec: ModelSpec) -> None:
    g = geometry(f)
    for name in ("attention_bias", "mlp_bias"):
        if f.flag(name):
            raise Unsupported(f"falcon_h1 with {name}=true: vLLM's falcon_h1.py builds no such bias")
    if f.flag("projectors_bias") != f.flag("mamba_proj_bias"):
        raise Unsupported("falcon_h1 with projectors_bias != mamba_proj_bias: vLLM biases the mixer's out_proj "
                          "by mamba_proj_bias, transformers by projectors_bias")
    d_ssm = f.opt_int("mamba_d_ssm")
    inter = f.int("mamba_expand") * g.hidden if d_ssm is None else d_ssm
    heads, hd, groups = f.int("mamba_n_heads"), f.int("mamba_d_head"), f.int("mamba_n_groups")
    if heads * hd != inter:  # transformers validates it too
        raise f.err("mamba_d_head", f"{hd} x mamba_n_heads {heads} != the mamba intermediate size {inter}")
    if heads % groups:
        raise f.err("mamba_n_groups", f"{groups} does not divide mamba_n_heads {heads}")
    mlp_inter = f.int("intermediate_size")
    def mixer(ts: list[Tensor], i: int, p: str) -> LayerKV:
        B.attention(ts, i, f"{p}.self_attn", g.hidden, g.n_heads, g.n_kv, g.head_dim)
        geo = mamba2_mixer(ts, i, f"{p}.mamba", g.hidden, heads=heads, head_dim=hd, groups=groups,
                           state=f.int("mamba_d_state"), conv_kernel=f.int("mamba_d_conv"),
                           conv_bias=f.flag("mamba_conv_bias", True), proj_bias=f.flag("mamba_proj_bias"),
                           norm=f.flag("mamba_rms_norm"), intermediate=inter)
        return LayerKV(AttentionKind.FULL, g.n_kv, g.head_dim, g.head_dim, state=geo)

    def mlp(ts: list[Tensor], i: int, p: str) -> None:
        B.gated_mlp(ts, i, f"{p}.feed_forward", g.hidden, mlp_inter, C.DENSE_MLP)

    decoder_stack(spec, f, g, attention=mixer, mlp=mlp, norms=("input_layernorm", "pre_ff_layernorm"),
                  final_norm="model.final_layernorm")
    spec.notes.append("falcon_h1: every layer holds an attention KV cache and a Mamba-2 state (parallel hybrid)")
