"""Regenerate reportgen/estimate/tf_backend.py's BACKEND_FROM table from vLLM's release sdists.

For every release sdist unpacked under /work/vllm_src/vllm-X.Y.Z/ (or --src), read
``vllm/model_executor/models/registry.py`` with ``ast`` and collect the architectures mapped to
``("transformers", "TransformersForCausalLM" | "TransformersMoEForCausalLM")`` -- the text-generation
models vLLM serves only through its Transformers modeling backend (``_TRANSFORMERS_SUPPORTED_MODELS``;
the generic ``Transformers*`` entry points themselves are skipped).  An architecture's first release is
the oldest sdist listing it; the script fails if one leaves the list again (it would need a last release
too).

Usage: python scripts/tf_backend_releases.py [--src DIR] [--check]
  prints the table as Python; --check exits 1 when reportgen/estimate/tf_backend.py differs.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

from first_served import REGISTRY, releases     # the release sdists found, oldest first (scripts/first_served.py)

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("TransformersForCausalLM", "TransformersMoEForCausalLM")


def backend_entries(registry: Path) -> dict[str, tuple[str, int]]:
    """Architecture -> (backend class, line) of one registry.py."""
    out = {}
    for node in ast.walk(ast.parse(registry.read_text())):
        if isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                if (isinstance(k, ast.Constant) and isinstance(v, ast.Tuple) and len(v.elts) == 2
                        and all(isinstance(e, ast.Constant) for e in v.elts)
                        and v.elts[0].value == "transformers" and v.elts[1].value in CLASSES
                        and not k.value.startswith("Transformers")):
                    out[k.value] = (v.elts[1].value, k.lineno)
    return out


def table(src: Path) -> dict[str, tuple[str, str, int]]:
    """Architecture -> (first release, backend class, registry.py line in that release)."""
    first: dict[str, tuple[str, str, int]] = {}
    seen_in_last: set[str] = set()
    for release in releases(src):
        entries = backend_entries(src / f"vllm-{release}" / REGISTRY)
        gone = seen_in_last - set(entries)
        if gone:
            raise SystemExit(f"vllm-{release} no longer serves {sorted(gone)} through the Transformers backend: "
                             "the table would need a last release")
        for arch, (cls, line) in entries.items():
            first.setdefault(arch, (release, cls, line))
        seen_in_last = set(entries)
    return dict(sorted(first.items()))


def render(t: dict[str, tuple[str, str, int]]) -> str:
    lines = ["BACKEND_FROM: dict[str, tuple[str, str]] = {"]
    for arch, (ver, cls, line) in t.items():
        lines.append(f'    "{arch}": ("{ver}", "{cls}"),   # vllm {ver} sdist registry.py:{line}')
    lines.append("}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="vLLM Transformers-backend first releases from the sdists")
    ap.add_argument("--src", type=Path, default=Path("/work/vllm_src"))
    ap.add_argument("--check", action="store_true", help="exit 1 if reportgen/estimate/tf_backend.py differs")
    a = ap.parse_args(argv)
    text = render(table(a.src))
    if a.check:
        current = (ROOT / "reportgen" / "estimate" / "tf_backend.py").read_text()
        if text not in current:
            print("reportgen/estimate/tf_backend.py BACKEND_FROM is out of date:\n" + text)
            return 1
        print("up to date")
        return 0
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
