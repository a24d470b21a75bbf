"""The seed's public API, kept for existing callers, backed by the exact estimator.

``estimate_memory(model_config, sequence_length, batch_size, tensor_parallel,
quantization_bytes, enable_kv_cache, framework_overhead_gb) -> MemoryBreakdown``
keeps its signature and the ``MemoryBreakdown`` fields (weights, activations,
kv_cache, framework_overhead, total; ``fits_in_gpu``, ``per_gpu_memory``).

Where it deliberately differs from the seed's formulas (PRODUCT.md §1):

- weights are exact tensor counts from the architecture (SwiGLU's third matrix,
  GQA K/V sizes, MoE experts under any config naming, MLA, tied embeddings,
  vocab padded to 64) times the bytes of the scheme ``quantization_bytes``
  maps to (4 -> fp32, 2 -> bf16, 1 -> int8 per-channel, 0.5 -> int4 group-128;
  the scales those schemes store are counted; embeddings/norms stay 16-bit);
- the KV cache is *sharded* across TP ranks (``max(1, n_kv // tp)`` heads per
  rank; MLA's latent cache is replicated), paged in 16-token blocks, and
  sliding-window layers hold only their window -- the seed replicated the whole
  cache on every rank and ignored grouped-query attention;
- activations are vLLM's measured profile peak (``reportgen.estimate.overheads``)
  for a batch of ``batch_size x sequence_length`` tokens, not a textbook formula;
- ``per_gpu_memory()`` is the worst rank's exact figure, not ``total / tp``.

Units: GiB (2**30 bytes), as vLLM prints them.  ``weights``, ``activations``,
``kv_cache`` and ``framework_overhead`` are summed over the ``tensor_parallel``
GPUs (what the group uses in total); ``total`` is their sum.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from .kvcache import kv_element_bytes, kv_groups
from .layout import Layout
from .tables import GIB, activation_coeffs, activation_gib, model_facts, serving_dtype
from .weights import build_weight_table, stage_weights

_QUANT_BY_BYTES = {4: "fp32", 2: "bf16", 1: "int8", 0.5: "int4"}


@dataclass
class MemoryBreakdown:
    """Memory of one model replica over its tensor-parallel group, GiB (see module docstring)."""

    weights: float
    activations: float
    kv_cache: float
    framework_overhead: float
    total: float
    tensor_parallel: int = 1
    per_gpu: dict[str, float] = field(default_factory=dict)   # the worst rank, term by term

    def per_gpu_memory(self) -> float:
        """GiB on the busiest GPU (exact per-rank sharding, not ``total / tp``)."""
        return sum(self.per_gpu.values()) if self.per_gpu else self.total / max(self.tensor_parallel, 1)

    def fits_in_gpu(self, gpu_memory_gb: float) -> bool:
        """True when the busiest GPU's memory fits in ``gpu_memory_gb`` (GiB)."""
        return self.per_gpu_memory() <= gpu_memory_gb


def _config_dict(model_config: Any) -> Mapping[str, Any]:
    if isinstance(model_config, Mapping):
        return model_config
    if hasattr(model_config, "to_dict"):
        return model_config.to_dict()
    raise TypeError("model_config must be a config.json dict or a transformers PretrainedConfig")


def estimate_memory(model_config: Any, sequence_length: int = 2048, batch_size: int = 1,
                    tensor_parallel: int = 1, quantization_bytes: float = 2, enable_kv_cache: bool = True,
                    framework_overhead_gb: float = 1.0) -> MemoryBreakdown:
    """Memory to serve ``batch_size`` requests of ``sequence_length`` tokens on ``tensor_parallel`` GPUs."""
    from reportgen.arch import build_spec
    from . import quant

    if sequence_length < 1 or batch_size < 1 or tensor_parallel < 1:
        raise ValueError("sequence_length, batch_size and tensor_parallel must be >= 1")
    spec = build_spec(_config_dict(model_config))
    if spec.unsupported_reason:
        raise ValueError(f"unsupported architecture: {spec.unsupported_reason}")
    name = _QUANT_BY_BYTES.get(quantization_bytes)
    if name is None:
        raise ValueError(f"quantization_bytes must be one of {sorted(_QUANT_BY_BYTES)}, got {quantization_bytes}")
    act_dtype = serving_dtype(spec, name if name == "fp32" else "checkpoint")
    act_b = 4 if act_dtype == "float32" else 2
    scheme = quant.whatif_scheme(name, act_dtype)
    lay = Layout(tp=tensor_parallel)
    w_rank = stage_weights(build_weight_table(spec, scheme, act_b), lay)[0].bytes / GIB
    tokens = sequence_length * batch_size
    a_rank = activation_gib(activation_coeffs(model_facts(spec), lay, act_b), tokens, batch_size, True)
    kv_rank = 0.0
    if enable_kv_cache:
        g = kv_groups(spec, tensor_parallel, 1, "auto", kv_element_bytes("auto", act_b, spec))
        kv_rank = batch_size * g.blocks_per_request(sequence_length, tokens) * g.stage_bytes_per_block[0] / GIB
    tp = tensor_parallel
    per_gpu = {"weights": w_rank, "activations": a_rank, "kv_cache": kv_rank,
               "framework_overhead": float(framework_overhead_gb)}
    w, a, kv, fo = (v * tp for v in per_gpu.values())
    return MemoryBreakdown(w, a, kv, fo, w + a + kv + fo, tp, per_gpu)
