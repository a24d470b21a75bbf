"""reportgen: which LLMs fit on which GPUs, in which parallel layouts, with how much KV cache left."""

__version__ = "0.1.0"


_LAZY = {"estimate_memory": "reportgen.estimate.seed_api", "MemoryBreakdown": "reportgen.estimate.seed_api"}


def __getattr__(name: str):
    """The seed API, imported on first use so ``import reportgen`` stays light (no polars/transformers)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'reportgen' has no attribute {name!r}")
