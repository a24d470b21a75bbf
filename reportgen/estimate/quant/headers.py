"""Checkpoint-true weight bytes: a checkpoint's safetensors header listing mapped onto a ModelSpec.

Why: the config says what a checkpoint *should* hold; the safetensors headers
(``reportgen.sources.checkpoint_weight_bytes``, read with
``huggingface_hub.get_safetensors_metadata``) say what it *does* hold, side
tensors included -- fp8 ``weight_scale`` / ``weight_scale_inv`` / ``input_scale``,
AWQ/GPTQ ``qweight`` / ``qzeros`` / ``scales`` / ``g_idx``, compressed-tensors
``weight_packed`` / ``weight_shape`` / ``weight_zero_point``, MXFP4
``*_blocks`` / ``*_scales``, NVFP4 ``weight_scale_2``, bitsandbytes
``weight.absmax`` / ``weight.quant_map`` ..., biases, router correction biases.
``attach_checkpoint_headers(spec, header)`` stores the listing on the spec
(``ModelSpec.checkpoint_tensors``); from then on ``checkpoint_scheme(spec)``
returns a ``HeaderScheme`` whose ``tensor_bytes(t)`` is the stored bytes of the
checkpoint tensors that make up spec tensor ``t``.  The estimator's per-rank
sharding (``estimate/weights.py``) applies unchanged, because the bytes stay
attached to spec tensors with their Shard class, layer and ``count``.

Mapping rules (checkpoint name -> spec tensor)
----------------------------------------------
1. *Canonical names.*  Both sides drop leading ``model.`` / ``language_model.``
   components (``model.language_model.layers.3...``,
   ``language_model.model.layers.3...`` and ``model.layers.3...`` are the same
   module), rename ``block_sparse_moe`` -> ``mlp`` (Mixtral), and spec names
   drop the arch layer's split tags (``qkv_proj[q]`` -> ``qkv_proj``,
   ``gate_up_proj[gate]`` -> ``gate_up_proj``).  Checkpoint names also drop the
   expert index (``experts.17.gate_proj`` -> ``experts.gate_proj``) and Mixtral's
   expert leaves are renamed (``w1``/``w3``/``w2`` -> ``gate_proj``/``up_proj``/``down_proj``).
2. *Module.*  A spec tensor's module is its name minus a trailing ``.weight`` /
   ``.bias`` (a parameter without one -- ``vision_model.class_embedding``,
   ``self_attn.sinks`` -- is its own module).  A checkpoint tensor belongs to the
   *longest* component-prefix of its canonical name that is a spec module,
   trying at each length: the prefix itself; its last component without a
   gpt-oss style suffix (``gate_up_proj_blocks`` / ``_scales`` / ``_scale`` /
   ``_bias`` -> ``gate_up_proj``); the vLLM-fused module (``q/k/v_proj`` ->
   ``qkv_proj``, ``gate_proj``/``up_proj`` -> ``gate_up_proj``: per-expert
   checkpoints of MoE families the spec models as one fused ``experts.gate_up_proj``
   entry); and the split modules (a fused checkpoint ``qkv_proj`` / ``gate_up_proj``
   whose spec keeps ``q/k/v_proj`` / ``gate_proj``+``up_proj``).
3. *Role.*  What follows the module is the stored part: ``bias`` (or a
   ``_bias`` suffix) goes to the module's spec bias tensor(s); everything else
   (``weight`` and every quantization side tensor, ``e_score_correction_bias``
   too) goes to the module's non-bias spec tensor(s).
4. *Pooling and splitting.*  Checkpoint tensors aimed at overlapping sets of
   spec tensors are pooled (all experts of a layer into the ``count=E`` entry;
   phi3's fused ``qkv_proj`` into its ``[q]`` COLUMN and ``[k]``/``[v]`` KV
   entries).  A pool with several spec tensors is split among them in
   proportion to their config-derived bytes (the base scheme's bytes of the
   main "weight" part, i.e. proportional to rows for the parts of one fused
   module, so per-channel and per-group scales split exactly), part by part,
   with integer largest-remainder rounding so the pool's bytes are kept exactly.
5. *Unmatched.*  Checkpoint tensors with no spec module are excluded and
   reported by module: MTP / next-n layers (``model.layers.61.*`` of DeepSeek-V3,
   which vLLM does not load for serving), rotary ``inv_freq`` buffers, a stored
   ``lm_head`` of a tied model (vLLM reuses the embedding), a bias the spec
   does not have.
6. *Fallback.*  Spec tensors no checkpoint tensor maps to keep the
   config-derived bytes of the base scheme; they are listed in the coverage
   report (a tied embedding is one stored tensor and one spec tensor: no
   fallback, no double count).

Bytes are *stored* bytes.  Two vLLM effects are not in a header: (a) vLLM
casts unquantized float tensors to the serving dtype, so a float tensor stored
at another float dtype than the model's (e.g. an fp32 norm in a bf16 model) is
counted as stored -- the coverage report lists such bytes under
``float_other_dtype`` (by element size: bf16 stored for an fp16 model is no
difference); unquantized fp32 checkpoints, which vLLM serves in 16-bit, never
get here: ``tables.scheme_for`` costs them as bf16 (the report warns).  (b) vLLM's MXFP4 MoE backends pad
the per-rank expert matrices and the Triton one re-tiles them (``layouts.MXFP4_MOE_PADDING``); ``HeaderScheme``
keeps that padding by scaling the header bytes of an expert tensor by the base
scheme's padded-per-rank / unpadded ratio, so a checkpoint whose bytes agree
with the config gives exactly the config-derived padded figure.
"""

from __future__ import annotations

import re
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from typing import Any, Mapping

from reportgen.arch.spec import ModelSpec, Tensor

from .scheme import Scheme, UnsupportedQuantization

MARKER = "+headers"

_LEADING = {"model", "language_model"}
_RENAME = {"block_sparse_moe": "mlp"}
_EXPERT_LEAF = {"w1": "gate_proj", "w3": "up_proj", "w2": "down_proj"}
_FUSED = {"q_proj": "qkv_proj", "k_proj": "qkv_proj", "v_proj": "qkv_proj",
          "gate_proj": "gate_up_proj", "up_proj": "gate_up_proj"}
_SPLIT = {"qkv_proj": ("q_proj", "k_proj", "v_proj"), "gate_up_proj": ("gate_proj", "up_proj")}
_SUFFIXES = ("_blocks", "_scales", "_scale", "_bias")
_TAG = re.compile(r"\[[^\]]*\]")
_FLOAT = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}
_SPEC_FLOAT = {"float32": "F32", "fp32": "F32", "float": "F32", "bfloat16": "BF16", "bf16": "BF16",
               "float16": "F16", "fp16": "F16", "half": "F16"}


# ---------------------------------------------------------------- names

def _strip(comps: list[str]) -> list[str]:
    while len(comps) > 1 and comps[0] in _LEADING:
        comps = comps[1:]
    return [_RENAME.get(c, c) for c in comps]


def _spec_module(name: str) -> tuple[str, str]:
    """Spec tensor name -> (canonical module, role)."""
    comps = _strip([_TAG.sub("", c) for c in name.split(".")])
    if len(comps) > 1 and comps[-1] in ("weight", "bias"):
        return ".".join(comps[:-1]), comps[-1]
    return ".".join(comps), "weight"


def _ckpt_components(name: str) -> tuple[list[str], str | None]:
    """Checkpoint name -> (canonical components, expert index or None)."""
    comps = _strip(name.split("."))
    out, expert = [], None
    i = 0
    while i < len(comps):
        c = comps[i]
        out.append(c)
        if c == "experts" and i + 1 < len(comps) and comps[i + 1].isdigit():
            expert = comps[i + 1]
            i += 1
            if i + 1 < len(comps) and comps[i + 1] in _EXPERT_LEAF:
                out.append(_EXPERT_LEAF[comps[i + 1]])
                i += 1
        i += 1
    return out, expert


def _module_label(name: str) -> str:
    """A checkpoint name's module for the unmatched listing (expert index as ``*``)."""
    comps = name.split(".")
    comps = ["*" if c.isdigit() and i and comps[i - 1] == "experts" else c for i, c in enumerate(comps)]
    return ".".join(comps[:-1]) if len(comps) > 1 else comps[0]


# ---------------------------------------------------------------- assignment

@dataclass
class _Assignment:
    """Which checkpoint bytes go to which pool of spec tensors (scheme-independent, cached)."""

    pools: list[tuple[tuple[int, ...], dict[str, int], int]]   # (spec indices, {part: bytes}, n tensors)
    unmatched: dict[str, dict[str, Any]]                        # module label -> {tensors, bytes, reason}
    float_other: dict[str, int]
    expert_indices: dict[int, set]                              # spec index -> expert ids seen
    header_bytes: int
    header_tensors: int


def _resolve(comps: list[str], modules: Mapping[str, dict[str, list[int]]]):
    """Longest prefix of ``comps`` naming spec module(s): (targets by role, prefix length, suffix part)."""
    for k in range(len(comps), 0, -1):
        head, leaf = comps[:k - 1], comps[k - 1]
        tries: list[tuple[list[str], str | None]] = [([leaf], None)]
        for s in _SUFFIXES:
            if leaf.endswith(s) and len(leaf) > len(s):
                tries.append(([leaf[: -len(s)]], s[1:]))
        for base_leaf, suffix in list(tries):
            lf = base_leaf[0]
            if lf in _FUSED:
                tries.append(([_FUSED[lf]], suffix))
            if lf in _SPLIT:
                tries.append((list(_SPLIT[lf]), suffix))
        for leaves, suffix in tries:
            found = [modules[m] for m in (".".join(head + [lf]) for lf in leaves) if m in modules]
            if found:
                return found, k, suffix
    return None, 0, None


def _unmatched_reason(spec: ModelSpec, comps: list[str], role_missing: str | None) -> str:
    if role_missing:
        return f"the spec module has no {role_missing} tensor"
    if comps[-1] == "inv_freq" or "rotary_emb" in comps:
        return "rotary buffer (vLLM recomputes it)"
    if "layers" in comps[:-1]:
        i = comps.index("layers")
        if i + 1 < len(comps) and comps[i + 1].isdigit() and i == 0 and int(comps[i + 1]) >= spec.num_layers:
            return (f"layer {comps[i + 1]} is beyond the {spec.num_layers} decoder layers "
                    "(MTP / next-n layer: vLLM does not load it for serving)")
    if comps[0] == "lm_head" and spec.tie_word_embeddings:
        return "lm_head of a tied model (vLLM reuses the embedding)"
    if any(c in ("mtp", "nextn") for c in comps):
        return "MTP / next-n module (vLLM does not load it for serving)"
    return "no spec tensor for this module"


def _assign(spec: ModelSpec, header: Mapping[str, Mapping[str, Any]]) -> _Assignment:
    modules: dict[str, dict[str, list[int]]] = defaultdict(lambda: {"weight": [], "bias": []})
    for i, t in enumerate(spec.tensors):
        m, role = _spec_module(t.name)
        modules[m][role].append(i)
    modules = dict(modules)

    parent = list(range(len(spec.tensors)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    hits: list[tuple[int, str, int]] = []          # (any member index, part, bytes) -- pooled after union
    pooled_n: dict[int, int] = defaultdict(int)
    unmatched: dict[str, dict[str, Any]] = {}
    float_other: dict[str, int] = defaultdict(int)
    expert_ids: dict[int, set] = defaultdict(set)
    model_float = _SPEC_FLOAT.get(str(spec.dtype).lower().removeprefix("torch."))
    total = 0
    resolved: dict[tuple, tuple] = {}     # experts collapse to one canonical name: resolve each once
    for name, info in header.items():
        nbytes = int(info.get("bytes", 0))
        total += nbytes
        comps, expert = _ckpt_components(name)
        key = tuple(comps)
        hit = resolved.get(key)
        if hit is None:
            hit = resolved[key] = _resolve(comps, modules)
        found, k, suffix = hit
        rest = comps[k:]
        role = "bias" if suffix == "bias" or rest == ["bias"] else "weight"
        targets = sorted({i for f in (found or ()) for i in f[role]})
        if not targets:
            label = _module_label(name)
            u = unmatched.setdefault(label, {"module": label, "tensors": 0, "bytes": 0,
                                             "reason": _unmatched_reason(spec, comps, role if found else None)})
            u["tensors"] += 1
            u["bytes"] += nbytes
            continue
        for j in targets[1:]:
            parent[find(j)] = find(targets[0])
        part = ".".join(rest) or (suffix or "weight")
        if suffix and rest:
            part = suffix + "." + ".".join(rest)
        hits.append((targets[0], part, nbytes))
        dt = str(info.get("dtype", "")).upper()
        if dt in _FLOAT and model_float and _FLOAT[dt] != _FLOAT[model_float]:
            float_other[dt] += nbytes
        if expert is not None:
            for j in targets:
                expert_ids[j].add(expert)

    pools: dict[int, dict[str, int]] = {}
    for idx, part, nbytes in hits:
        r = find(idx)
        p = pools.setdefault(r, {})
        p[part] = p.get(part, 0) + nbytes
        pooled_n[r] += 1
    members: dict[int, list[int]] = defaultdict(list)
    for i in range(len(spec.tensors)):
        r = find(i)
        if r in pools:
            members[r].append(i)
    return _Assignment([(tuple(members[r]), pools[r], pooled_n[r]) for r in pools],
                       unmatched, dict(float_other), dict(expert_ids), total, len(header))


_CACHE: "OrderedDict[tuple, tuple[Any, _Assignment]]" = OrderedDict()
_CACHE_MAX = 16


def _assignment(spec: ModelSpec, header: Mapping) -> _Assignment:
    key = (id(header), len(header), tuple(t.name for t in spec.tensors), spec.num_layers, spec.tie_word_embeddings,
           spec.dtype)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is header:
        _CACHE.move_to_end(key)
        return hit[1]
    a = _assign(spec, header)
    _CACHE[key] = (header, a)          # the strong ref keeps id(header) from being reused
    while len(_CACHE) > _CACHE_MAX:
        _CACHE.popitem(last=False)
    return a


def _split(total: int, weights: list[float]) -> list[int]:
    """``total`` split in proportion to ``weights``, integers summing to ``total`` (largest remainder)."""
    s = float(sum(weights))
    if s <= 0:
        weights, s = [1.0] * len(weights), float(len(weights))
    raw = [total * w / s for w in weights]
    out = [int(x) for x in raw]
    rem = total - sum(out)
    for i in sorted(range(len(raw)), key=lambda i: raw[i] - out[i], reverse=True)[:rem]:
        out[i] += 1
    return out


def _config_bytes(base, t: Tensor) -> int:
    try:
        return int(base.tensor_bytes(t))
    except Exception:   # noqa: BLE001 - a proportional weight only
        return t.numel * int(getattr(base, "model_dtype_bytes", 2))


def _split_weight(base, t: Tensor) -> float:
    """A pool member's share: its config-derived bytes of the main stored part ("weight"), which
    for the parts of one fused module (same layout) is proportional to its rows -- so per-row
    side tensors (per-channel / per-group scales, zeros) split exactly too."""
    try:
        return float(base.breakdown(t).get("weight") or base.tensor_bytes(t))
    except Exception:   # noqa: BLE001
        return float(_config_bytes(base, t))


def _per_tensor(spec: ModelSpec, a: _Assignment, base) -> dict[str, dict[str, int]]:
    """{spec tensor name: {part: bytes}} for every spec tensor some checkpoint bytes map to."""
    out: dict[str, dict[str, int]] = {}
    for idx, parts, _n in a.pools:
        ts = [spec.tensors[i] for i in idx]
        if len(ts) == 1:
            out[ts[0].name] = dict(parts)
            continue
        w = [_split_weight(base, t) for t in ts]
        for t in ts:
            out[t.name] = {}
        for part, b in parts.items():
            for t, share in zip(ts, _split(b, w)):
                out[t.name][part] = share
    return out


# ---------------------------------------------------------------- scheme

class _NoMemo:
    """``exclude`` of a HeaderScheme: the base scheme's ignore list, plus a marker entry that
    carries a digit so ``estimate.weights._layer_agnostic`` turns its per-layer memo off
    (header bytes may differ between layers that share a name pattern)."""

    MARK = "<checkpoint headers: bytes per layer, e.g. layers.0>"

    def __init__(self, base):
        self.base = base
        self.entries = tuple(getattr(base, "entries", ()) or ()) + (self.MARK,)

    def __bool__(self) -> bool:
        return True

    def matches(self, tensor_name: str) -> bool:
        return bool(self.base) and self.base.matches(tensor_name)


@dataclass(frozen=True, eq=False)
class HeaderScheme:
    """A Scheme whose bytes per spec tensor come from the checkpoint's safetensors headers.

    Same interface as ``Scheme`` (name, tensor_bytes, breakdown, expert_rank_bytes,
    describe, kv_cache_dtype_default, ...); layouts and rules are the ``base``
    scheme's (the config-derived one), used for spec tensors with no header
    match and for the MXFP4 per-rank padding ratio.  Deliberately *not* a
    ``Scheme`` and without ``rules``: ``estimate.weights`` shortcuts rule-less
    schemes to ``numel x dtype``, which would ignore the headers.
    """

    base: Scheme
    parts_by_name: Mapping[str, Mapping[str, int]]
    name: str = ""
    description: str = ""
    bytes_by_name: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "bytes_by_name", {k: sum(v.values()) for k, v in self.parts_by_name.items()})
        if not self.name:
            object.__setattr__(self, "name", self.base.name + MARKER)
        object.__setattr__(self, "exclude", _NoMemo(self.base.exclude))

    # -- delegated attributes
    @property
    def origin(self) -> str:
        return self.base.origin

    @property
    def method(self) -> str:
        return self.base.method

    @property
    def model_dtype_bytes(self) -> int:
        return self.base.model_dtype_bytes

    @property
    def quantize_lm_head(self) -> bool:
        return self.base.quantize_lm_head

    @property
    def kv_cache_dtype_default(self):
        return self.base.kv_cache_dtype_default

    @property
    def moe_padding(self):
        return self.base.moe_padding

    def eligible(self, t: Tensor) -> bool:
        return self.base.eligible(t)

    def layout_for(self, t: Tensor):
        return self.base.layout_for(t)

    def is_quantized(self, t: Tensor) -> bool:
        return self.base.is_quantized(t)

    # -- bytes
    def from_headers(self, t: Tensor) -> bool:
        return t.name in self.bytes_by_name

    def tensor_bytes(self, t: Tensor) -> int:
        b = self.bytes_by_name.get(t.name)
        return self.base.tensor_bytes(t) if b is None else b

    def breakdown(self, t: Tensor) -> dict[str, int]:
        parts = self.parts_by_name.get(t.name)
        return self.base.breakdown(t) if parts is None else dict(parts)

    def load_copy_bytes(self, t: Tensor) -> int:
        """What vLLM derives from ``t`` at load (``Scheme.load_copy_bytes``: MLA's dequantized kv_b_proj)."""
        return self.base.load_copy_bytes(t)

    def expert_rank_bytes(self, t: Tensor, moe_tp: int = 1, experts_on_rank: int | None = None) -> float:
        """Header bytes of ``experts_on_rank`` experts split ``moe_tp`` ways, times the base scheme's
        backend padding factor (1 unless MXFP4 padding applies)."""
        hb = self.bytes_by_name.get(t.name)
        if hb is None:
            return self.base.expert_rank_bytes(t, moe_tp, experts_on_rank)
        n = t.count if experts_on_rank is None else experts_on_rank
        share = hb * n / t.count / moe_tp
        cfg = self.base.tensor_bytes(t)
        if not cfg:
            return share
        unpadded = cfg * n / t.count / moe_tp
        return share * (self.base.expert_rank_bytes(t, moe_tp, experts_on_rank) / unpadded) if unpadded else share

    def describe(self) -> str:
        return self.description or self.name


def header_scheme(spec: ModelSpec, base: Scheme) -> HeaderScheme:
    """The HeaderScheme for ``spec.checkpoint_tensors`` over the config-derived ``base`` scheme."""
    header = spec.checkpoint_tensors or {}
    a = _assignment(spec, header)
    parts = _per_tensor(spec, a, base)
    n_fallback = sum(1 for t in spec.tensors if t.name not in parts)
    excluded = sum(u["bytes"] for u in a.unmatched.values())
    desc = (f"checkpoint safetensors headers: stored bytes of every tensor and side tensor "
            f"({a.header_tensors} header tensors"
            + (f", {excluded} B with no spec tensor excluded" if excluded else "")
            + (f", {n_fallback} spec tensors config-derived" if n_fallback else "")
            + f"); layouts as {base.describe()}")
    return HeaderScheme(base, parts, description=desc)


# ---------------------------------------------------------------- public entry point

def _header_tensors(header: Mapping) -> Mapping[str, Mapping[str, Any]]:
    """Accept the full ``checkpoint_weight_bytes`` result or just its ``tensors`` dict."""
    inner = header.get("tensors") if isinstance(header, Mapping) else None
    if isinstance(inner, Mapping) and ("total_bytes" in header or "source" in header):
        return inner
    return header


def attach_checkpoint_headers(spec: ModelSpec, header: Mapping) -> dict[str, Any]:
    """Store a checkpoint's safetensors header listing on ``spec``; return the coverage report.

    ``header``: ``reportgen.sources.checkpoint_weight_bytes(...)``'s result, or its ``tensors``
    dict ``{name: {"shape", "dtype", "bytes", ...}}``.  Afterwards ``checkpoint_scheme(spec)``
    (weight axis "checkpoint"/"auto") costs weights from the headers.

    The report (plain JSON types)::

        {"scheme": "fp8-block128+headers", "config_scheme": "fp8-block128",
         "header_tensors", "header_bytes",          # the whole listing
         "matched_tensors", "matched_bytes",        # mapped onto spec tensors
         "unmatched_tensors", "unmatched_bytes",
         "unmatched": [{"module", "tensors", "bytes", "reason"}, ...],   # by module, largest first
         "spec_tensors", "spec_tensors_from_headers",
         "fallback": [{"tensor", "bytes"}, ...], "fallback_bytes",       # spec tensors with no header match
         "weight_bytes",                            # sum of tensor_bytes under the header scheme
         "config_weight_bytes",                     # the same under the config-derived scheme
         "float_other_dtype": {dtype: bytes},       # float tensors stored at another dtype than the model's
         "warnings": [...], "revision": ...}
    """
    from .checkpoint import checkpoint_scheme

    tensors = _header_tensors(header)
    spec.checkpoint_tensors = tensors if isinstance(tensors, dict) else dict(tensors)
    warnings: list[str] = []
    try:
        base = checkpoint_scheme(spec, headers=False)
        config_error = None
    except UnsupportedQuantization as e:
        from .whatif import plain_scheme
        base, config_error = plain_scheme(spec.dtype, origin="checkpoint"), str(e)
        warnings.append(f"config-derived scheme unavailable ({e}); pools split by {spec.dtype} bytes")
    if not spec.quantization_config and getattr(base, "model_dtype_bytes", 2) == 4:
        warnings.append("float32 checkpoint: vLLM serves it in 16-bit and the estimator costs it as bf16 "
                        "(config-derived); the header bytes are not used for it")
    a = _assignment(spec, spec.checkpoint_tensors)
    scheme = header_scheme(spec, base)
    matched_bytes = sum(sum(p.values()) for _i, p, _n in a.pools)
    matched_n = sum(n for _i, _p, n in a.pools)
    fallback = [{"tensor": t.name, "bytes": _config_bytes(base, t)}
                for t in spec.tensors if not scheme.from_headers(t)]
    for i, ids in a.expert_indices.items():
        t = spec.tensors[i]
        if t.count > 1 and len(ids) != t.count:
            warnings.append(f"{t.name}: {len(ids)} experts in the checkpoint, {t.count} in the config")
    unmatched = sorted(a.unmatched.values(), key=lambda u: (-u["bytes"], u["module"]))
    return {
        "scheme": scheme.name if config_error is None else None,
        "config_scheme": base.name if config_error is None else None,
        "config_error": config_error,
        "header_tensors": a.header_tensors,
        "header_bytes": a.header_bytes,
        "matched_tensors": matched_n,
        "matched_bytes": matched_bytes,
        "unmatched_tensors": sum(u["tensors"] for u in unmatched),
        "unmatched_bytes": sum(u["bytes"] for u in unmatched),
        "unmatched": [dict(u) for u in unmatched],
        "spec_tensors": len(spec.tensors),
        "spec_tensors_from_headers": len(spec.tensors) - len(fallback),
        "fallback": fallback,
        "fallback_bytes": sum(f["bytes"] for f in fallback),
        "weight_bytes": sum(scheme.tensor_bytes(t) for t in spec.tensors),
        "config_weight_bytes": sum(_config_bytes(base, t) for t in spec.tensors),
        "float_other_dtype": a.float_other,
        "warnings": warnings,
        "revision": header.get("revision") if isinstance(header, Mapping) and tensors is not header else None,
    }


__all__ = ["MARKER", "HeaderScheme", "attach_checkpoint_headers", "header_scheme"]
