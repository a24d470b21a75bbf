"""NVIDIA ModelOpt checkpoints (``hf_quant_config.json``) -> Scheme.

Why separate: ModelOpt keeps its scheme outside config.json and names
algorithms, not layouts.  Accepted inputs (see checkpoint.py for how the
source layer stores them): ``{"quant_method": "modelopt", "quantization":
{"quant_algo": ..., "kv_cache_quant_algo": ..., "group_size": ...,
"exclude_modules": [...]}}`` (hf_quant_config.json) or the same keys flat
(config.json ``quantization_config`` of newer exports, where the list may be
called ``ignore``).  Layouts, as vLLM's ModelOpt methods allocate them:

  * FP8: fp8 weight + float32 weight_scale + float32 input_scale per tensor;
  * FP8_PER_CHANNEL_PER_TOKEN: fp8 + float32 scale per output channel;
  * FP8_PB_WO: fp8 + float32 scale per 128x128 block (weight-only);
  * NVFP4: fp4 nibbles + fp8 scale per 16 inputs + float32 weight_scale_2
    and input_scale per tensor;
  * MIXED_PRECISION: ``quantized_layers`` maps module names to one of the
    above; modules not listed stay unquantized.
``kv_cache_quant_algo: FP8`` gives ``kv_cache_dtype_default = "fp8"`` (and
vLLM's ``--kv-cache-dtype auto`` then means fp8_e4m3, see kv.py).
"""

from __future__ import annotations

from .layouts import Fp8, Nvfp4
from .kv import checkpoint_kv_cache_dtype
from .names import NameMatcher, candidates, module_name, strip_leading
from .scheme import Rule, Scheme, UnsupportedQuantization, any_linear, unquantized_note

_ALGOS = ("FP8", "FP8_PER_CHANNEL_PER_TOKEN", "FP8_PB_WO", "NVFP4", "MIXED_PRECISION")


def algo_layout(algo: str, q: dict):
    algo = str(algo or "").upper()
    if algo == "FP8":
        return Fp8("tensor", static_input=True), "fp8-tensor"
    if algo == "FP8_PER_CHANNEL_PER_TOKEN":
        return Fp8("channel"), "fp8-channel"
    if algo == "FP8_PB_WO":
        return Fp8("block", (128, 128)), "fp8-block128"
    if algo == "NVFP4":
        return Nvfp4(int(q.get("group_size") or 16), input_scale=True), "nvfp4"
    raise UnsupportedQuantization(f"quantization method 'modelopt' with quant_algo {algo or None!r} is not modelled "
                                  f"(supported: {', '.join(_ALGOS)})")


def _layer_set_selector(names: set[str]):
    def selects(t) -> bool:
        return any(".".join(strip_leading(c.split("."))) in names for c in candidates(t.name))
    return selects


def parse(qc: dict, mb: int) -> Scheme:
    q = qc["quantization"] if isinstance(qc.get("quantization"), dict) else qc
    algo = str(q.get("quant_algo") or "").upper()
    exclude = q.get("exclude_modules") or q.get("ignore") or qc.get("ignore") or []
    try:
        kv_default = "fp8" if checkpoint_kv_cache_dtype({**qc, "quant_method": "modelopt"}) else None
    except UnsupportedQuantization:  # an NVFP4 KV cache: weights are still modelled, kv_cache_bytes refuses
        kv_default = "nvfp4"
    if algo == "MIXED_PRECISION":
        by_label: dict[str, tuple[object, set[str]]] = {}
        for layer, cfg in (q.get("quantized_layers") or qc.get("quantized_layers") or {}).items():
            layout, label = algo_layout(cfg.get("quant_algo"), cfg)
            key = f"{label}:{layout}"
            by_label.setdefault(key, (layout, set()))[1].add(".".join(strip_leading(module_name(layer).split("."))))
        rules = tuple(Rule(_layer_set_selector(names), layout, key, tuple(sorted(names)))
                      for key, (layout, names) in by_label.items())
        labels = sorted({k.split(":")[0] for k in by_label})
        name = "mixed:" + "+".join(labels)
    else:
        layout, name = algo_layout(algo, q)
        rules = (Rule(any_linear, layout),)
    return Scheme(name, mb, rules, NameMatcher(exclude), method="modelopt", kv_cache_dtype_default=kv_default,
                  description=f"ModelOpt {algo}: {name}" + (", KV cache calibrated for fp8" if kv_default else "")
                  + unquantized_note(mb, exclude))
