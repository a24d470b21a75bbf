"""Pure state-space models: mamba (Mamba-1), falcon_mamba (Falcon-Mamba) and mamba2 (Codestral Mamba).

Follows vLLM ``vllm/model_executor/models/mamba.py`` (read at commit 58c92a9bf5d6b5f037391eec0f0e5714fe83c792,
the stored version; its registry maps ``FalconMambaForCausalLM`` to the same ``MambaForCausalLM``) and
``mamba2.py`` (read at commit 055e47c28003156421365af985d676fc921cb075), with transformers 5.24
``modeling_mamba.py`` / ``modeling_falcon_mamba.py`` / ``modeling_mamba2.py``.

Every layer is ``backbone.layers.{i}``: an RMSNorm ``norm`` and a ``mixer``; then ``backbone.norm_f``
and the lm_head, tied to ``backbone.embeddings`` when ``tie_word_embeddings`` (both codes, both
versions).  No attention, no MLP, no RoPE: every layer holds a recurrent state per sequence and no
KV tokens (``LayerKV(STATE)``), so vLLM treats the model as attention-free (``IsAttentionFree``) and
its only KV-cache group is the state group (estimate/kvcache.py prices it).

* mamba / falcon_mamba: the Mamba-1 mixer (``arch/mixers.mamba1_mixer``) of ``intermediate_size``
  (transformers sets ``int(expand * hidden)``), ``state_size``, ``conv_kernel``, ``time_step_rank``
  (``auto`` = ``ceil(hidden / 16)``, resolved by transformers), ``use_conv_bias`` on the conv,
  ``use_bias`` on in/out proj.  Falcon-Mamba's dt / B / C RMSNorms carry no weight (vLLM
  ``rms_norm_has_weight=False``, transformers ``FalconMambaWeightlessRMSNorm`` buffers): no parameters.
  State ``mamba1``: conv ``(k - 1, I / tp)`` + ssm ``(I / tp, N)``.
* mamba2: the Mamba-2 mixer (``arch/mixers.mamba2_mixer``, gated RMSNorm included) of ``num_heads`` x
  ``head_dim`` (= ``int(expand * hidden)``, transformers validates it), ``n_groups``, ``state_size``,
  ``conv_kernel``.  State ``mamba2``: conv ``(k - 1, (I + 2 G' N) / tp)`` + ssm ``(H / tp, P, N)``.

vLLM's ``Mamba2ForCausalLM`` does not implement ``SupportsPP`` (``mamba.py``'s class does): mamba2 layouts with
``pp > 1`` are ``invalid_layout`` (``ModelSpec.pp_invalid``).  Both state dtypes follow vLLM's auto (``MambaStateDtypeCalculator``: the model dtype for conv and ssm).

Caveat: the only stored vLLM ``mamba.py`` (58c92a9b) is V0-era (``SupportsV0Only``, its own cache manager);
the V1 class builds the same layers (the shared ``MambaMixer`` of ``layers/mamba/mamba_mixer.py`` @00f8d445,
``arch/mixers.py``) and takes its state from ``MambaStateShapeCalculator.mamba1_state_shape`` -- the same
``(k - 1, I / tp)`` / ``(I / tp, N)`` shapes the V0 ``_get_mamba_cache_shape`` above returns.  The registry
entry ``FalconMambaForCausalLM: ("mamba", "MambaForCausalLM")`` was read in a copy of vLLM's
``models/registry.py`` found by the search index.

Refused where vLLM and transformers build different models: a mamba2 config whose ``intermediate_size``
field differs from ``expand * hidden_size`` (vLLM's decoder layer reads the field when present, its state
shape and transformers use ``expand * hidden_size``).  Malformed: ``num_heads`` not a multiple of
``n_groups`` (the SSD kernels assert ``nheads % ngroups == 0``).
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.errors import Unsupported
from reportgen.arch.families.common import Geometry, set_scalars
from reportgen.arch.fields import Fields
from reportgen.arch.mixers import mamba1_mixer, mamba2_mixer, state_layer
from reportgen.arch.spec import LayerKV, ModelSpec, Tensor

REQUIRED = ("hidden_size", "num_hidden_layers", "vocab_size")
HANDLES = ("state_size", "expand", "time_step_rank", "n_groups", "num_heads")
NOTE = ("attention-free (pure state-space model): no KV tokens; each sequence holds one recurrent state "
        "per layer, vLLM's state block is max_model_len tokens long")


def _geometry(f: Fields) -> Geometry:
    """The shared geometry without attention heads (0 heads: no attention anywhere)."""
    return Geometry(f.int("hidden_size"), f.int("num_hidden_layers"), 0, 0, 0, f.int("vocab_size"),
                    f.flag("tie_word_embeddings", True))


def _stack(spec: ModelSpec, f: Fields, mixer) -> None:
    """Embedding; per layer ``norm`` + ``mixer`` (a state layer each); ``norm_f``; lm_head (tied per config)."""
    g = _geometry(f)
    ts = spec.tensors
    B.embedding(ts, g.vocab, g.hidden, "backbone.embeddings")
    layers: list[LayerKV] = []
    for i in range(g.n_layers):
        p = f"backbone.layers.{i}"
        B.norm(ts, f"{p}.norm", g.hidden, i)
        layers.append(state_layer(mixer(ts, i, f"{p}.mixer", g.hidden)))
    B.norm(ts, "backbone.norm_f", g.hidden, None)
    B.lm_head(ts, g.vocab, g.hidden, tied=g.tie)
    set_scalars(spec, f, g)
    spec.layers_kv = layers
    spec.rotary_dim = 0
    spec.rope_caches = ()
    spec.notes.append(NOTE)


def build_mamba(f: Fields, spec: ModelSpec) -> None:
    """mamba and falcon_mamba (vLLM ``MambaForCausalLM``)."""
    inter, state = f.int("intermediate_size"), f.int("state_size")
    ck, dt_rank = f.int("conv_kernel"), f.int("time_step_rank")
    conv_bias, proj_bias = f.flag("use_conv_bias", True), f.flag("use_bias")

    def mixer(ts: list[Tensor], i: int, p: str, hidden: int):
        return mamba1_mixer(ts, i, p, hidden, intermediate=inter, state=state, conv_kernel=ck, dt_rank=dt_rank,
                            conv_bias=conv_bias, proj_bias=proj_bias, dt_bc_norms=False)

    _stack(spec, f, mixer)


def build_mamba2(f: Fields, spec: ModelSpec) -> None:
    """mamba2 (vLLM ``Mamba2ForCausalLM``)."""
    hidden = f.int("hidden_size")
    expand = f.get("expand")
    if isinstance(expand, bool) or not isinstance(expand, (int, float)) or expand <= 0:
        raise f.err("expand", f"must be a positive number, got {expand!r}")
    inter = int(expand * hidden)
    field = f.raw.get("intermediate_size")
    if field is not None and field != inter:
        raise Unsupported(f"mamba2 with intermediate_size {field!r} != expand * hidden_size {inter}: vLLM's mixer "
                          "reads the field, its state shape and transformers use expand * hidden_size")
    heads, hd, groups = f.int("num_heads"), f.int("head_dim"), f.int("n_groups")
    if heads * hd != inter:   # transformers validates it too
        raise f.err("head_dim", f"{hd} x num_heads {heads} != expand * hidden_size {inter}")
    if heads % groups:
        raise f.err("n_groups", f"{groups} does not divide num_heads {heads} (the SSD kernels assert it)")
    state, ck = f.int("state_size"), f.int("conv_kernel")
    conv_bias, proj_bias = f.flag("use_conv_bias", True), f.flag("use_bias")

    def mixer(ts: list[Tensor], i: int, p: str, hidden: int):
        return mamba2_mixer(ts, i, p, hidden, heads=heads, head_dim=hd, groups=groups, state=state,
                            conv_kernel=ck, conv_bias=conv_bias, proj_bias=proj_bias, intermediate=inter)

    _stack(spec, f, mixer)
    spec.pp_invalid = ("vLLM's Mamba2ForCausalLM does not implement SupportsPP (mamba2.py @055e47c2): pipeline "
                       "parallelism is refused")


