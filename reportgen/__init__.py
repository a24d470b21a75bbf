"""reportgen: which LLMs fit on which GPUs, in which parallel layouts, with how much KV cache left."""

__version__ = "0.1.0"
