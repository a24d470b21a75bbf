"""Recurrent-state geometry of hybrid models' state layers, as vLLM allocates it.

Why a geometry and not a byte count: vLLM shards a state layer's conv and
temporal (SSM / delta-rule) states by TP, pads Mamba-2 groups so every head
shard has its groups, and types the two states separately
(``mamba_cache_dtype`` for conv, ``mamba_ssm_cache_dtype`` for the temporal
state).  Keeping the config dimensions lets the estimator price any TP and
dtype choice exactly.

Follows ``MambaStateShapeCalculator`` / ``MambaStateDtypeCalculator`` in
vLLM's ``vllm/model_executor/layers/mamba/mamba_utils.py`` (read at commit
02d710837549a368073552333f66d714477415d2), default SD conv layout.  The shape
is the same in either layout; only the element count matters here.

Kinds (vLLM's calculator method):
- ``mamba1``: ``(intermediate, state, conv_kernel)`` -> conv ``(k-1, I/tp)``, ssm ``(I/tp, state)``
- ``mamba2``: ``(intermediate, n_groups, num_heads, head_dim, state, conv_kernel)`` ->
  conv ``(k-1, (I + 2*G'*state)/tp)`` with ``G'`` padded to a multiple of tp when
  ``G % tp``; ssm ``(heads/tp, head_dim, state)``
- ``gdn`` (Gated DeltaNet): ``(num_k_heads, num_v_heads, head_k_dim, head_v_dim, conv_kernel)`` ->
  conv ``(k-1, (2*hk*nk + hv*nv)/tp)``, ssm ``(nv/tp, hv, hk)``
- ``kda`` (Kimi Delta Attention): ``(num_heads, head_dim, num_k_heads, head_k_dim, conv_kernel)`` ->
  conv ``(k-1, (H*d + 2*Hk*dk)/tp)``, recurrent ``(H/tp, d, d)`` always fp32
- ``short_conv`` (LFM2): ``(intermediate, conv_kernel)`` -> conv ``(k-1, I/tp)`` only
- ``linear_attention`` (MiniMax lightning): ``(num_heads, head_dim)`` -> ``(H/tp, d, d)`` in the
  state dtype only

``ssm_dtype``: the temporal state's dtype when the model fixes it (Qwen3.5's config ``mamba_ssm_dtype``,
which vLLM copies into ``mamba_ssm_cache_dtype`` when that is ``auto``; NemotronH's float16 default);
None = vLLM's ``auto``: the conv state's dtype, i.e. the model dtype.  A user's
``--mamba-ssm-cache-dtype`` would win over both (not a job axis yet).

``num_spec`` (speculative tokens) widens the conv window of mamba2 / gdn / kda by that many rows.
Divisibility is the caller's check (``invalid_layout``): these functions floor-divide as vLLM's
``divide`` would assert.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}

# the dims vLLM divides by TP, per kind: (index into dims, the config field it usually comes from)
_TP_DIVIDED = {
    "mamba1": ((0, "intermediate_size"),),
    "mamba2": ((2, "mamba heads"), (0, "mamba intermediate size")),
    "gdn": ((0, "linear_num_key_heads"), (1, "linear_num_value_heads")),
    "kda": ((0, "linear attention num_heads"), (2, "linear attention num_k_heads")),
    "short_conv": ((0, "conv intermediate size"),),
    "linear_attention": ((0, "linear attention num_heads"),),
}

STATE_KINDS = ("mamba1", "mamba2", "gdn", "kda", "short_conv", "linear_attention")


def extra_groups_for_head_shards(n_groups: int, tp: int) -> int:
    """vLLM: groups added so each head shard carries its groups (0 when ``n_groups % tp == 0``)."""
    return 0 if n_groups % tp == 0 else tp - n_groups


@dataclass(frozen=True, slots=True)
class StateGeometry:
    """One state layer's config dimensions; ``dims`` in the order documented per kind above."""

    kind: str
    dims: tuple[int, ...]
    num_spec: int = 0
    ssm_dtype: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in STATE_KINDS:
            raise ValueError(f"unknown state kind {self.kind!r}")
        if self.ssm_dtype is not None and self.ssm_dtype not in DTYPE_BYTES:
            raise ValueError(f"unknown state dtype {self.ssm_dtype!r}")

    def shapes(self, tp: int = 1) -> tuple[tuple[tuple[int, ...], str], ...]:
        """``((shape, role), ...)`` on one rank; role is ``conv``, ``ssm`` or ``fp32``."""
        k, d = self.kind, self.dims
        if k == "mamba1":
            inter, state, ck = d
            return (((ck - 1, inter // tp), "conv"), ((inter // tp, state), "ssm"))
        if k == "mamba2":
            inter, groups, heads, hd, state, ck = d
            g = groups + extra_groups_for_head_shards(groups, tp)
            return (((ck - 1 + self.num_spec, (inter + 2 * g * state) // tp), "conv"),
                    ((heads // tp, hd, state), "ssm"))
        if k == "gdn":
            nk, nv, hk, hv, ck = d
            return (((ck - 1 + self.num_spec, (2 * hk * nk + hv * nv) // tp), "conv"),
                    ((nv // tp, hv, hk), "ssm"))
        if k == "kda":
            heads, hd, nk, hk, ck = d
            return (((ck - 1 + self.num_spec, (heads * hd + 2 * nk * hk) // tp), "conv"),
                    ((heads // tp, hd, hd), "fp32"))
        if k == "short_conv":
            inter, ck = d
            return (((ck - 1, inter // tp), "conv"),)
        heads, hd = d  # linear_attention
        return (((heads // tp, hd, hd), "conv"),)

    def bytes_per_seq(self, tp: int = 1, conv_bytes: float = 2, ssm_bytes: float | None = None) -> float:
        """State bytes one sequence holds in this layer on one rank.

        ``conv_bytes``: element size of ``mamba_cache_dtype`` (model dtype when auto);
        ``ssm_bytes``: of ``mamba_ssm_cache_dtype`` (None = ``self.ssm_dtype`` if set, else the
        same as conv, vLLM's auto).
        """
        if ssm_bytes is None and self.ssm_dtype is not None:
            ssm_bytes = DTYPE_BYTES[self.ssm_dtype]
        ssm = conv_bytes if ssm_bytes is None else ssm_bytes
        size = {"conv": conv_bytes, "ssm": ssm, "fp32": 4}
        return sum(prod(shape) * size[role] for shape, role in self.shapes(tp))


def state_tp_rule(geom: StateGeometry, tp: int) -> str | None:
    """The first state dimension vLLM would ``divide`` by TP that ``tp`` does not divide, named
    (an ``invalid_layout`` reason); None when the layout is valid for this state layer.

    Mamba-2 groups are the one exception to plain division: vLLM's ``MambaMixer2`` asserts
    ``n_groups % tp == 0`` unless ``n_groups == 1`` (then B and C are replicated on every rank).
    """
    for idx, name in _TP_DIVIDED[geom.kind]:
        n = geom.dims[idx]
        if n % tp:
            return f"{name} ({n}) % tp ({tp}) != 0: vLLM splits the recurrent state heads across TP ranks"
    if geom.kind == "mamba2":
        groups = geom.dims[1]
        if groups % tp and groups != 1:
            return f"mamba n_groups ({groups}) % tp ({tp}) != 0 and n_groups != 1 (vLLM MambaMixer2 asserts it)"
    return None


def first_state_tp_rule(geoms, tp: int) -> str | None:
    """``state_tp_rule`` over a model's state geometries (each distinct one checked once): the
    layout check's one entry point for recurrent layers."""
    for geom in dict.fromkeys(g for g in geoms if g is not None):
        rule = state_tp_rule(geom, tp)
        if rule:
            return rule
    return None
