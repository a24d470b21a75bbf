"""compressed-tensors (llm-compressor / RedHatAI checkpoints) config -> Scheme.

Why its own module: compressed-tensors describes quantization per *config
group* (weights / input_activations args, a ``format`` and ``targets``), so
one checkpoint can mix layouts (e.g. fp8 attention + int4 MLP), and it has
the richest ignore list syntax (exact names and ``re:`` regexes).  Layouts
follow the parameters vLLM's compressed-tensors schemes allocate:

  * float 8-bit weights (``float-quantized``: FP8 / FP8_DYNAMIC / FP8_BLOCK):
    fp8 + float32 scale per tensor / output channel / 128x128 block, plus a
    float32 input scale when activations are static per tensor;
  * int 8-bit weights with int8 activations (``int-quantized``, W8A8):
    int8 + float32 scale per channel (or tensor);
  * int 4/8-bit weight-only (``pack-quantized``, W4A16 / W8A16): int32-packed
    weight ``(out, in*bits/32)``, scales ``(out, groups)`` at the model dtype
    (or ``scale_dtype``), packed zero points when asymmetric, ``weight_g_idx``
    int32 when ``actorder == "group"`` (not for "static"), and the 16-byte
    ``weight_shape``;
  * float 4-bit group 16 (``nvfp4-pack-quantized``): NVFP4; group 32: MXFP4.

Targets: a group applies to a tensor when a name / ``re:`` target matches it
(checked first, as vLLM prefers name matches) or when it targets the
``Linear`` class and the tensor is an eligible Linear weight.  The top-level
``ignore`` list keeps matching tensors at the model dtype.  ``kv_cache_scheme``
with 8-bit float gives ``kv_cache_dtype_default = "fp8"``.
"""

from __future__ import annotations

from .layouts import Fp8, Int8, IntGroup, Mxfp4, Nvfp4
from .names import NameMatcher
from .scheme import Rule, Scheme, UnsupportedQuantization, scale_label, unquantized_note

LINEAR_CLASSES = {"Linear", "LinearBase", "ColumnParallelLinear", "RowParallelLinear",
                  "QKVParallelLinear", "MergedColumnParallelLinear", "FusedMoE"}
_SCALE_DTYPES = {"float16": 2, "bfloat16": 2, "float32": 4, "float8_e4m3fn": 1, "float8_e8m0fnu": 1}


def _scale_bytes(w: dict, default: int) -> int:
    sd = w.get("scale_dtype")
    if not sd:
        return default
    key = str(sd).removeprefix("torch.")
    if key not in _SCALE_DTYPES:
        raise UnsupportedQuantization(f"compressed-tensors scale_dtype {sd!r} is not modelled")
    return _SCALE_DTYPES[key]


def group_layout(group: dict, fmt: str | None, mb: int):
    """(layout, short label) of one config group."""
    w = group.get("weights") or {}
    ia = group.get("input_activations")
    bits, kind = int(w.get("num_bits", 8)), str(w.get("type", "int")).lower()
    strategy = str(w.get("strategy", "tensor")).lower()
    gs = w.get("group_size")
    fmt = str(fmt or "").lower()
    if "24" in fmt or fmt.startswith("sparse") or fmt == "marlin-24":
        raise UnsupportedQuantization(f"compressed-tensors format {fmt!r} (sparse) is not modelled")
    static_in = bool(ia) and not ia.get("dynamic", False) and str(ia.get("strategy", "tensor")) == "tensor"
    if kind == "float" and bits == 8:
        if strategy == "block":
            bo, bi = (int(b) for b in (w.get("block_structure") or (128, 128)))
            return Fp8("block", (bo, bi), static_in), f"fp8-block{bo}" if bo == bi else f"fp8-block{bo}x{bi}"
        if strategy not in ("tensor", "channel"):
            raise UnsupportedQuantization(f"compressed-tensors fp8 strategy {strategy!r} is not modelled")
        return Fp8(strategy, static_input=static_in), f"fp8-{strategy}"
    if kind == "float" and bits == 4:
        if int(gs or 16) == 16:
            return Nvfp4(16, input_scale=bool(ia)), "nvfp4" if ia else "nvfp4-w4a16"
        if int(gs) == 32:
            return Mxfp4(32), "mxfp4"
    if kind == "int" and bits == 8 and ia and str(ia.get("type", "int")) == "int":
        if strategy not in ("tensor", "channel"):
            raise UnsupportedQuantization(f"compressed-tensors w8a8 int8 strategy {strategy!r} is not modelled")
        return (Int8(strategy, static_in, input_asym=not ia.get("symmetric", True)),
                f"w8a8-int8-{strategy}")
    if kind == "int" and bits in (2, 3, 4, 8) and not ia and strategy in ("group", "channel"):
        group_size = int(gs) if strategy == "group" and gs else None
        asym = not w.get("symmetric", True)
        gidx = str(w.get("actorder") or "").lower() == "group"
        layout = IntGroup(bits, group_size, asym, _scale_bytes(w, mb), "ct", g_idx=gidx)
        label = f"w{bits}a16-" + (f"g{group_size}" if group_size else "ch") + ("-asym" if asym else "") \
            + ("-actorder" if gidx else "")
        return layout, label
    act = f"{ia.get('type')}{ia.get('num_bits')}" if ia else "none"
    raise UnsupportedQuantization(
        f"compressed-tensors scheme weights {kind}{bits}/{strategy}, activations {act} (format {fmt or '?'}) "
        "is not modelled")


def _name_selector(matcher: NameMatcher):
    return lambda t: matcher.matches(t.name)


def _class_selector(t) -> bool:
    return True


def parse(qc: dict, mb: int) -> Scheme:
    groups = qc.get("config_groups") or {}
    if not groups:
        raise UnsupportedQuantization("compressed-tensors config without config_groups is not modelled")
    sparsity = qc.get("sparsity_config") or {}
    if sparsity.get("format") not in (None, "dense"):
        raise UnsupportedQuantization(f"compressed-tensors sparsity format {sparsity.get('format')!r} is not modelled")
    name_rules, class_rules, labels = [], [], []
    for gname, g in groups.items():
        layout, label = group_layout(g, g.get("format") or qc.get("format"), mb)
        labels.append(label)
        targets = g.get("targets") or ["Linear"]
        named = [t for t in targets if t not in LINEAR_CLASSES]
        if named:
            name_rules.append(Rule(_name_selector(NameMatcher(named)), layout, f"{gname}:{label}", tuple(named)))
        if len(named) < len(targets):
            class_rules.append(Rule(_class_selector, layout, f"{gname}:{label}"))
    kv = qc.get("kv_cache_scheme") or None
    kv_default = None
    if kv:
        if int(kv.get("num_bits", 0)) == 8 and str(kv.get("type", "")).lower() == "float":
            kv_default = "fp8"
        else:
            raise UnsupportedQuantization(f"compressed-tensors kv_cache_scheme {kv!r} is not modelled")
    name = "+".join(dict.fromkeys(labels))
    ignore = qc.get("ignore") or []
    return Scheme(name, mb, tuple(name_rules + class_rules), NameMatcher(ignore), method="compressed-tensors",
                  kv_cache_dtype_default=kv_default,
                  description=f"compressed-tensors {name}" + (", KV cache calibrated for fp8" if kv_default else "")
                  + unquantized_note(mb, ignore) + (f"; group scales {scale_label(mb)}" if "a16" in name else ""))
