"""Matching our tensor names against a checkpoint's ignore / exclude / target lists.

Why a rule of our own: checkpoints name modules the way the *HF checkpoint*
does ("model.layers.0.mlp.gate", "model.language_model.layers.3.linear_attn.out_proj",
"model.visual.blocks.0.attn.qkv"), vLLM compares them with its own module
prefixes, and our ``Tensor.name`` is the HF parameter name with or without
the leading "model." ("layers.0.mlp.gate.weight").  Every list also mixes
three entry styles.

The rule (documented here once, used by every scheme):

1. Our module name is the tensor name minus a trailing ``.weight`` / ``.bias``,
   minus the part tag of a fused checkpoint tensor the arch layer splits
   ("in_proj[zx]", "qkv_proj[q]", "gate_up_proj[up]": the module is
   "in_proj", ...) and minus leading "model." / "language_model." /
   "backbone." components (the arch layer may keep or drop them; "backbone"
   is the HF root of the Mamba-2 / Nemotron-H checkpoints, which vLLM's
   nemotron_h ``hf_to_vllm_mapper`` renames to "model" -- exclude lists such
   as NVIDIA's Nemotron-3 ``hf_quant_config.json`` name
   "backbone.layers.4.mixer.in_proj").  Candidates are that name, and the
   name re-prefixed with "model.", "model.language_model.",
   "language_model.model." (the HF prefixes of text models and multimodal
   wrappers) and "backbone.".  For fused-in-vLLM projections we
   also try the fused name (q/k/v_proj -> qkv_proj, gate/up_proj ->
   gate_up_proj), and for experts stored as one entry with ``count`` the
   name of expert 0 ("experts.gate_proj" -> "experts.0.gate_proj").
2. ``re:<pattern>`` entries (compressed-tensors) match when ``re.match``
   succeeds on any candidate -- vLLM's rule on its full prefix.
3. Entries with ``*`` / ``?`` (ModelOpt ``exclude_modules``, gpt-oss
   ``modules_to_not_convert``) match by ``fnmatch`` on any candidate, or on a
   candidate's parent (so "model.layers.*.self_attn" covers its projections).
4. Plain entries match when their dotted components, after dropping the
   leading "model." / "language_model." components, appear as a contiguous
   run of a candidate's components.  This covers exact full names
   (compressed-tensors ``ignore``), parent modules ("visual", "lm_head") and
   the substring style of AWQ/bitsandbytes ``modules_to_not_convert`` /
   ``llm_int8_skip_modules`` -- but component-wise, so "mlp.gate" does not
   swallow "mlp.gate_proj" and "layers.1" does not swallow "layers.10"
   (vLLM's raw substring test would; no real checkpoint relies on that).
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from functools import lru_cache

_PREFIXES = ("", "model.", "model.language_model.", "language_model.model.", "backbone.")
_LEADING = {"model", "language_model", "backbone"}
_PART_TAG = re.compile(r"\[[^\].]*\]$")       # "in_proj[zx]": one part of a fused checkpoint tensor
_FUSED = {"q_proj": "qkv_proj", "k_proj": "qkv_proj", "v_proj": "qkv_proj",
          "gate_proj": "gate_up_proj", "up_proj": "gate_up_proj"}


def module_name(tensor_name: str) -> str:
    """``layers.0.self_attn.q_proj.weight`` -> ``layers.0.self_attn.q_proj``; ``mixer.in_proj[zx].weight``
    -> ``mixer.in_proj`` (a split part of a fused tensor is its module's)."""
    for suffix in (".weight", ".bias"):
        if tensor_name.endswith(suffix):
            tensor_name = tensor_name[: -len(suffix)]
            break
    return _PART_TAG.sub("", tensor_name)


def strip_leading(components: list[str]) -> list[str]:
    while len(components) > 1 and components[0] in _LEADING:
        components = components[1:]
    return components


@lru_cache(maxsize=65536)
def candidates(tensor_name: str) -> tuple[str, ...]:
    parts = strip_leading(module_name(tensor_name).split("."))
    base = ".".join(parts)
    variants = [base]
    if parts[-1] in _FUSED:
        variants.append(".".join(parts[:-1] + [_FUSED[parts[-1]]]))
    if "experts" in parts[:-1]:
        i = parts.index("experts")
        if i + 1 < len(parts) and not parts[i + 1].isdigit():
            variants.append(".".join(parts[: i + 1] + ["0"] + parts[i + 1:]))
    return tuple(p + v for v in variants for p in _PREFIXES)


def _dotted(components: list[str]) -> str:
    """Components as a dot-delimited string with a dot at either end: a contiguous run of
    components is then a substring (components hold no dots), so "layers.1" is not in "layers.10"."""
    return "." + ".".join(components) + "."


class NameMatcher:
    """A compiled ignore / exclude / target list (see the module docstring for the rule)."""

    def __init__(self, entries):
        self.entries = tuple(e for e in (entries or ()) if isinstance(e, str) and e)
        self._regex = [re.compile(e[3:]) for e in self.entries if e.startswith("re:")]
        self._glob = [e for e in self.entries if not e.startswith("re:") and ("*" in e or "?" in e)]
        self._plain = [_dotted(strip_leading(e.split("."))) for e in self.entries
                       if not e.startswith("re:") and "*" not in e and "?" not in e]

    def __bool__(self) -> bool:
        return bool(self.entries)

    def __eq__(self, other) -> bool:
        return isinstance(other, NameMatcher) and other.entries == self.entries

    def __hash__(self) -> int:
        return hash(self.entries)

    def __repr__(self) -> str:
        return f"NameMatcher({len(self.entries)} entries)"

    def matches(self, tensor_name: str) -> bool:
        if not self.entries:
            return False
        cands = candidates(tensor_name)
        for c in cands:
            if any(r.match(c) for r in self._regex):
                return True
            if any(fnmatchcase(c, g) or fnmatchcase(c, g + ".*") for g in self._glob):
                return True
        for c in cands[:: len(_PREFIXES)]:  # un-prefixed variants; plain entries are stripped
            hay = "." + c + "."
            if any(p in hay for p in self._plain):
                return True
        return False
