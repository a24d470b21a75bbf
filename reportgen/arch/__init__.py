"""Architecture layer: config.json -> normalized ModelSpec (exact parameter counts, KV geometry).

``build_spec`` is the entry point; ``ModelSpec`` (spec.py) the contract the
estimator codes against.  transformers is imported lazily, on the first build.
"""

from reportgen.arch.build import build_spec
from reportgen.arch.errors import ConfigError
from reportgen.arch.spec import AttentionKind, Component, LayerKV, ModelSpec, Shard, Tensor

__all__ = ["build_spec", "ConfigError", "ModelSpec", "Tensor", "Shard", "Component", "LayerKV", "AttentionKind"]
