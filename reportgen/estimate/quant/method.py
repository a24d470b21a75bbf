"""Which quantization method a config dict names.

Why a module of its own: both the scheme dispatcher (checkpoint.py) and the
KV-cache dtype resolution (kv.py) need it, and configs do not always say
``quant_method`` -- a raw ModelOpt ``hf_quant_config.json`` is recognized by
its producer, an old compressed-tensors ``compression_config`` by its
``config_groups``.  vLLM's aliases (awq_marlin, gptq_marlin, modelopt_fp4)
map to the method whose layout they share.
"""

from __future__ import annotations


def method_of(qc: dict) -> str:
    """The normalized quant_method of a config dict (ModelOpt / compressed-tensors recognized by shape)."""
    m = str(qc.get("quant_method") or "").lower().replace("_", "-")
    if not m:
        if isinstance(qc.get("producer"), dict) and qc["producer"].get("name") == "modelopt":
            return "modelopt"
        if "config_groups" in qc:
            return "compressed-tensors"
        return "unknown"
    aliases = {"awq-marlin": "awq", "gptq-marlin": "gptq", "modelopt-fp4": "modelopt",
               "modelopt-mixed": "modelopt", "fbgemm-fp8": "fbgemm_fp8", "auto-round": "auto-round",
               "autoround": "auto-round"}
    return aliases.get(m, m)
