"""Serve-as-shipped schemes: read a checkpoint's quantization config into a Scheme.

Why one parser per ``quant_method``: every method spells group size, zero
points and skipped modules differently (``weight_block_size`` vs
``group_size`` vs ``config_groups``; ``modules_to_not_convert`` vs ``ignore``
vs ``exclude_modules`` vs ``llm_int8_skip_modules``).  Each parser turns its
dialect into layouts (``layouts.py``) and a NameMatcher (``names.py``).  A
method we do not know raises UnsupportedQuantization naming it -- a bf16
guess would be 2-4x wrong.

``spec.quantization_config`` is the config.json's ``quantization_config`` (or
``compression_config``).  For NVIDIA ModelOpt repos, whose scheme lives in a
separate ``hf_quant_config.json``, the source layer stores that file's content
with ``"quant_method": "modelopt"`` added, i.e.
``{"quant_method": "modelopt", "producer": {...}, "quantization": {"quant_algo": ..., ...}}``;
the flat form newer ModelOpt exports put in config.json
(``{"quant_method": "modelopt", "quant_algo": "NVFP4", ...}``) is read too.
"""

from __future__ import annotations

import re
from dataclasses import replace

from reportgen.arch.spec import Component, ModelSpec

from . import compressed_tensors, modelopt
from .layouts import DEFAULT_MXFP4_BACKEND, MXFP4_MOE_PADDING, NVFP4_MOE_BACKENDS, Bnb4, Bnb8, Fp8, IntGroup, Mxfp4
from .method import method_of
from .headers import header_scheme
from .names import NameMatcher, candidates
from .scheme import (Rule, Scheme, UnsupportedQuantization, any_linear, dtype_bytes, routed_experts,
                     scale_label, unquantized_note)
from .whatif import plain_scheme

SUPPORTED_METHODS = ("fp8", "fbgemm_fp8", "compressed-tensors", "awq", "gptq", "auto-round",
                     "bitsandbytes", "mxfp4", "modelopt")


def checkpoint_scheme(spec: ModelSpec, mxfp4_backend: str = DEFAULT_MXFP4_BACKEND, *, headers: bool = True):
    """The scheme the checkpoint is stored (and served by vLLM) in.

    ``mxfp4_backend`` picks which of vLLM's MXFP4 MoE backends ``expert_rank_bytes``
    follows (padding, Triton swizzle, bias dtype: ``layouts.MXFP4_MOE_PADDING``).
    The default, "triton", is what vLLM >= 0.19 picks on H100 / H200 (SM90), the
    GPU of the reference logs: gpt-oss-20b 13.63 / 6.99 GiB at TP1 / TP2 vs 13.64 /
    7.01 logged.  On A100 (SM80) and SM120 vLLM uses "marlin" (gpt-oss-20b +0.5 % at
    TP1, +1.5 % at TP2 over "triton"), on B200 "sm100_flashinfer": the estimator passes
    each GPU's choice (``layouts.mxfp4_moe_backend`` via ``tables.mxfp4_backend_for``; a
    job mixing capabilities gets one layout row per backend, ``matrix.layout_table``).
    Other methods ignore it (``mxfp4_moe_experts``).

    When the spec carries the checkpoint's safetensors header listing
    (``attach_checkpoint_headers``, ``spec.checkpoint_tensors``) and ``headers`` is true, the
    result is a ``headers.HeaderScheme`` named ``<config scheme>+headers`` whose bytes are the
    stored bytes; ``headers=False`` gives the config-derived scheme regardless.
    """
    scheme = _config_scheme(spec, mxfp4_backend)
    if headers and getattr(spec, "checkpoint_tensors", None):
        return header_scheme(spec, scheme)
    return scheme


def mxfp4_moe_experts(qc: dict | None) -> bool:
    """The checkpoint's routed experts are MXFP4, stored in the layout of vLLM's MXFP4 MoE backend (so the
    bytes per rank follow the GPU: ``layouts.mxfp4_moe_backend``): gpt-oss (``quant_method`` mxfp4) and
    DeepSeek-V4 (fp8 with ``expert_dtype`` fp4, ``_fp8``'s "+mxfp4-experts")."""
    if not qc:
        return False
    method = method_of(qc)
    return method == "mxfp4" or (method == "fp8" and qc.get("expert_dtype") == "fp4")


def _config_scheme(spec: ModelSpec, mxfp4_backend: str) -> Scheme:
    qc = spec.quantization_config
    if not qc:
        return plain_scheme(spec.dtype, origin="checkpoint")
    mb = dtype_bytes(spec.dtype)
    method = method_of(qc)
    parser = _PARSERS.get(method)
    if parser is None:
        raise UnsupportedQuantization(
            f"quantization method {method!r} is not modelled (supported: {', '.join(SUPPORTED_METHODS)})")
    scheme = parser(qc, mb)
    if mxfp4_backend in NVFP4_MOE_BACKENDS:       # NVFP4 experts on a GPU whose backend is known (tables.py)
        # gated (w13 = gate + up) unless the experts have an up projection and no gate (nemotron_h's relu2)
        gated = any(t.component is Component.ROUTED_EXPERTS and ("gate" in (m := t.name.rsplit(".", 2)[-2])
                                                                 or m in ("w13", "w1", "w3")) for t in spec.tensors)
        return replace(scheme, moe_padding=replace(NVFP4_MOE_BACKENDS[mxfp4_backend], gated=gated),
                       description=scheme.description + f"; routed experts in the per-rank layout of vLLM's "
                       f"{mxfp4_backend.removeprefix('nvfp4_')} NVFP4 MoE backend")
    if mxfp4_moe_experts(qc):
        if mxfp4_backend not in MXFP4_MOE_PADDING:
            raise UnsupportedQuantization(f"unknown mxfp4 backend {mxfp4_backend!r}; "
                                          f"allowed: {', '.join(MXFP4_MOE_PADDING)}")
        scheme = replace(scheme, moe_padding=MXFP4_MOE_PADDING[mxfp4_backend],
                         description=scheme.description + f"; per-rank layout of vLLM's {mxfp4_backend} MoE backend"
                         + (" (H100/H200 default; A100 uses marlin)" if mxfp4_backend == DEFAULT_MXFP4_BACKEND else ""))
    return scheme


def _fp8(qc: dict, mb: int) -> Scheme:
    block = qc.get("weight_block_size")
    static = str(qc.get("activation_scheme", "dynamic")).lower() == "static"
    if block:
        bo, bi = (int(b) for b in block)
        layout, name = Fp8("block", (bo, bi), static), f"fp8-block{bo}" if bo == bi else f"fp8-block{bo}x{bi}"
        what = f"fp32 scale per {bo}x{bi} block"
    else:
        layout, name, what = Fp8("tensor", static_input=static), "fp8-tensor", "one fp32 scale per tensor"
    skip = qc.get("modules_to_not_convert") or qc.get("ignored_layers")
    if qc.get("expert_dtype") == "fp4":      # DeepSeek-V4 (families/deepseek_v4.py): MXFP4 routed experts
        return Scheme(name + "+mxfp4-experts", mb, (Rule(routed_experts, Mxfp4()), Rule(any_linear, layout)),
                      NameMatcher(skip), method="fp8",
                      description=f"DeepSeek-V4 fp8 checkpoint: routed experts MXFP4 (fp4 + one e8m0 scale per 32 "
                      f"inputs, vLLM's Mxfp4MoEMethod), other Linear weights fp8 e4m3, {what}"
                      + unquantized_note(mb, skip))
    return Scheme(name, mb, (Rule(any_linear, layout),), NameMatcher(skip), method="fp8",
                  description=f"fp8 checkpoint: Linear weights fp8 e4m3, {what}"
                  + (" + static input scale" if static else "") + unquantized_note(mb, skip))


def _fbgemm_fp8(qc: dict, mb: int) -> Scheme:
    skip = qc.get("modules_to_not_convert")
    return Scheme("fp8-channel", mb, (Rule(any_linear, Fp8("channel")),), NameMatcher(skip), method="fbgemm_fp8",
                  description="fbgemm fp8 checkpoint: Linear weights fp8 + fp32 scale per output channel"
                  + unquantized_note(mb, skip))


def _awq(qc: dict, mb: int) -> Scheme:
    bits = int(qc.get("bits", qc.get("w_bit", 4)))
    group = int(qc.get("group_size", qc.get("q_group_size", 128)))
    zp = bool(qc.get("zero_point", True))
    skip = qc.get("modules_to_not_convert")
    layout = IntGroup(bits, group, zp, mb, "awq")
    return Scheme(f"awq-int{bits}-g{group}", mb, (Rule(any_linear, layout),), NameMatcher(skip), method="awq",
                  description=f"AWQ: {bits}-bit packed in int32, group {group}, {scale_label(mb)} scales"
                  + (f" + packed {bits}-bit zeros" if zp else "") + unquantized_note(mb, skip))


def _regex_selector(pattern: str):
    rx = re.compile(pattern)
    return lambda t: any(rx.match(c) for c in candidates(t.name))


def _gptq(qc: dict, mb: int) -> Scheme:
    bits = int(qc.get("bits", 4))
    group = int(qc.get("group_size", 128))
    desc = bool(qc.get("desc_act", False))
    base = IntGroup(bits, group, True, mb, "gptq", g_idx=desc)
    rules, skip = [], []
    # GPTQModel "dynamic": {"-:regex": {}} skips modules, "+:regex" / "regex": {bits, group_size, ...} overrides.
    for key, over in (qc.get("dynamic") or {}).items():
        if key.startswith("-:"):
            skip.append("re:" + key[2:])
            continue
        pat = key[2:] if key.startswith("+:") else key
        over = over or {}
        layout = IntGroup(int(over.get("bits", bits)), int(over.get("group_size", group)), True, mb, "gptq",
                          g_idx=bool(over.get("desc_act", desc)))
        rules.append(Rule(_regex_selector(pat), layout, pat, ("re:" + pat,)))
    rules.append(Rule(any_linear, base))
    g = "ch" if group < 0 else f"g{group}"
    return Scheme(f"gptq-int{bits}-{g}" + ("-desc_act" if desc else ""), mb, tuple(rules),
                  NameMatcher(skip + list(qc.get("modules_to_not_convert") or [])), method="gptq",
                  quantize_lm_head=bool(qc.get("lm_head", False)),
                  description=f"GPTQ: {bits}-bit packed in int32, group {group}, {scale_label(mb)} scales"
                  + " + packed zeros"
                  + (" + int32 g_idx (desc_act)" if desc else "") + (", lm_head quantized" if qc.get("lm_head") else "")
                  + unquantized_note(mb, skip))


def _auto_round(qc: dict, mb: int) -> Scheme:
    """AutoRound exports in GPTQ (default) or AWQ packing; extra_config bits >= 16 keeps a layer unquantized."""
    bits = int(qc.get("bits", 4))
    group = int(qc.get("group_size", 128))
    fmt = str(qc.get("packing_format", "auto_round:auto_gptq"))
    if "awq" in fmt:
        layout = IntGroup(bits, group, True, mb, "awq")
    elif "gptq" in fmt or fmt in ("auto_round", "auto_round:auto_round"):
        layout = IntGroup(bits, group, True, mb, "gptq")
    else:
        raise UnsupportedQuantization(f"quantization method 'auto-round' with packing_format {fmt!r} is not modelled")
    skip = list(qc.get("modules_to_not_convert") or [])
    skip += [k for k, v in (qc.get("extra_config") or {}).items() if int((v or {}).get("bits", bits)) >= 16]
    return Scheme(f"autoround-int{bits}-g{group}", mb, (Rule(any_linear, layout),), NameMatcher(skip),
                  method="auto-round",
                  description=f"AutoRound ({fmt}): {bits}-bit packed, group {group}, {scale_label(mb)} scales"
                  + " + packed zeros"
                  + unquantized_note(mb, skip))


def _bnb(qc: dict, mb: int) -> Scheme:
    four = qc.get("load_in_4bit", qc.get("_load_in_4bit", False))
    eight = qc.get("load_in_8bit", qc.get("_load_in_8bit", False))
    skip = qc.get("llm_int8_skip_modules") or qc.get("modules_to_not_convert")
    if four:
        kind = str(qc.get("bnb_4bit_quant_type", "fp4")).lower()
        nested = bool(qc.get("bnb_4bit_use_double_quant", False))
        return Scheme(f"bnb-{kind}" + ("-dq" if nested else ""), mb, (Rule(any_linear, Bnb4(nested)),),
                      NameMatcher(skip), method="bitsandbytes",
                      description=f"bitsandbytes {kind}: 4-bit + absmax per 64 "
                      + ("(uint8, double-quantized per 256)" if nested else "(fp32)") + unquantized_note(mb, skip))
    if eight:
        return Scheme("bnb-int8", mb, (Rule(any_linear, Bnb8()),), NameMatcher(skip), method="bitsandbytes",
                      description="bitsandbytes LLM.int8(): int8 + fp32 absmax per row" + unquantized_note(mb, skip))
    raise UnsupportedQuantization("quantization method 'bitsandbytes' without load_in_4bit / load_in_8bit")


def _mxfp4(qc: dict, mb: int) -> Scheme:
    skip = qc.get("modules_to_not_convert")
    return Scheme("mxfp4", mb, (Rule(routed_experts, Mxfp4()),), NameMatcher(skip), method="mxfp4",
                  description="MXFP4: routed experts as fp4 + one e8m0 scale per 32 inputs;"
                  f" attention, router, embeddings, lm_head at {mb} B")


_PARSERS = {
    "fp8": _fp8,
    "fbgemm_fp8": _fbgemm_fp8,
    "compressed-tensors": compressed_tensors.parse,
    "awq": _awq,
    "gptq": _gptq,
    "auto-round": _auto_round,
    "bitsandbytes": _bnb,
    "mxfp4": _mxfp4,
    "modelopt": modelopt.parse,
}
