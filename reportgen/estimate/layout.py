"""Parallel layouts: which decoder layers and which experts land on which rank.

Why a module of its own: the pipeline split and the expert split decide the
*worst* rank, and vLLM's rules are not the obvious ones (leftover layers go to
the stages just before the last, not the first; with expert parallelism the
first ranks take the remainder experts).  Everything here mirrors vLLM V1:

- ``vllm/distributed/utils.py::get_pp_indices``: ``L // pp`` layers per stage,
  the ``L % pp`` leftovers one each on ``partitions[-2], partitions[-3], ...``.
- ``fused_moe/config.py::FusedMoEParallelConfig.make``: without EP every expert
  is split ``tp * dp`` ways; with EP ``ep_size = tp * dp`` and rank ``r`` holds
  ``E // ep + (1 if r < E % ep else 0)`` whole experts.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Layout:
    """One parallel layout: tensor, pipeline, data parallel sizes and the EP flag."""

    tp: int = 1
    pp: int = 1
    dp: int = 1
    ep: bool = False

    @property
    def gpus(self) -> int:
        return self.tp * self.pp * self.dp

    @property
    def ep_size(self) -> int:
        """Ranks the routed experts are spread over (vLLM flattens DP into the MoE group)."""
        return self.tp * self.dp


def pp_partition(num_layers: int, pp: int) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` decoder-layer ranges per stage, as vLLM's get_pp_indices.

    >>> pp_partition(10, 4)
    [(0, 2), (2, 5), (5, 8), (8, 10)]
    """
    if pp < 1:
        raise ValueError(f"pp must be >= 1, got {pp}")
    base, rest = divmod(num_layers, pp)
    sizes = [base] * pp
    # leftovers one each on the stages just before the last (partitions[-2], [-3], ...)
    for i in range(rest):
        sizes[(pp - 2 - i) % pp] += 1
    out, start = [], 0
    for n in sizes:
        out.append((start, start + n))
        start += n
    return out


def experts_on_rank(num_experts: int, ep_size: int, rank: int) -> int:
    """Whole experts held by EP rank ``rank`` (the first ``E % ep`` ranks get one more)."""
    base, rest = divmod(num_experts, ep_size)
    return base + (1 if rank < rest else 0)


def rank_label(stage: int, ep_rank: int | None = None) -> str:
    """The worst-rank name used in results: ``pp3`` or ``pp0/ep1``."""
    return f"pp{stage}" if ep_rank is None else f"pp{stage}/ep{ep_rank}"
