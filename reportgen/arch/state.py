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

``num_spec`` (speculative tokens) widens the conv window of mamba2 / gdn / kda by that many rows.
Divisibility is the caller's check (``invalid_layout``): these functions floor-divide as vLLM's
``divide`` would assert.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

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

    def __post_init__(self) -> None:
        if self.kind not in STATE_KINDS:
            raise ValueError(f"unknown state kind {self.kind!r}")

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
        ``ssm_bytes``: of ``mamba_ssm_cache_dtype`` (None = same as conv, vLLM's auto).
        """
        ssm = conv_bytes if ssm_bytes is None else ssm_bytes
        size = {"conv": conv_bytes, "ssm": ssm, "fp32": 4}
        return sum(prod(shape) * size[role] for shape, role in self.shapes(tp))
