#!/usr/bin/env python
"""Regenerate reportgen/estimate/first_served.json: the first vLLM release whose model registry lists
each architecture, read from the release sdists (no vLLM import, no network).

    .venv/bin/python scripts/first_served.py [--src /work/vllm_src] [--check] [--removed]

For every ``vllm-X.Y.Z/vllm/model_executor/models/registry.py`` under ``--src`` the keys of the
dictionaries ``_VLLM_MODELS`` is built from (``_TEXT_GENERATION_MODELS``, ``_MULTIMODAL_MODELS``, ... --
what ``ModelRegistry`` resolves and ``_raise_for_unsupported`` checks) are collected with ``ast``.
An architecture gets an entry when the oldest release read (0.10.0) does not list it; its value is the
first release line that does, as ``"X.Y"``, or ``"X.Y.Z"`` when it first appears in a patch release and
the previous patch of that line was read too (then ``X.Y.(Z-1)`` is known not to list it).

Left out: architectures whose first listing maps to vLLM's Transformers backend (module
``transformers``: ``_TRANSFORMERS_SUPPORTED_MODELS``) -- before that listing vLLM's fallback
(``_try_resolve_transformers``) may already serve them through the backend, so the registry alone does
not say when serving began.

``--check``: exit 1 when the JSON differs from what the sdists give.  ``--removed``: also compare
``served.LAST_SERVED`` and the newest sdist's ``_PREVIOUSLY_SUPPORTED_MODELS`` with the registries
(a removed architecture must be listed in its last release and in no later one).

``--removed`` also checks ``served.NEVER_LISTED`` (listed by no registry read) and ``served.UNPARSED_MODEL_TYPES`` (a
key of no release's ``_CONFIG_REGISTRY`` in ``vllm/transformers_utils/config.py``).

``unlisted``: architectures a release dropped without a ``_PREVIOUSLY_SUPPORTED_MODELS`` entry (renames), with
the releases read that do not list them after their first listing.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "reportgen" / "estimate" / "first_served.json"
REGISTRY = Path("vllm/model_executor/models/registry.py")
CONFIG_PY = Path("vllm/transformers_utils/config.py")
SRC = Path("/work/vllm_src")       # --src sets it


def _ver(name: str) -> tuple[int, ...]:
    return tuple(int(x) for x in name.split("."))


def releases(src: Path) -> list[str]:
    found = [p.name.removeprefix("vllm-") for p in src.glob("vllm-*") if (p / REGISTRY).is_file()]
    return sorted((v for v in found if re.fullmatch(r"\d+\.\d+\.\d+", v)), key=_ver)


def _dict_entries(node: ast.Dict, defs: dict[str, ast.Dict], out: dict[str, str]) -> None:
    """key -> module of a registry dict literal; ``**OTHER`` entries are followed (a ``**{comprehension}``
    only re-lists keys the dict it iterates already holds)."""
    for key, value in zip(node.keys, node.values):
        if key is None:
            if isinstance(value, ast.Name) and value.id in defs:
                _dict_entries(defs[value.id], defs, out)
            elif isinstance(value, ast.Dict):
                _dict_entries(value, defs, out)
            continue
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            mod = value.elts[0].value if isinstance(value, ast.Tuple) and isinstance(value.elts[0], ast.Constant) else ""
            out[key.value] = mod


def read_registry(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(architecture -> module for everything ``_VLLM_MODELS`` holds, ``_PREVIOUSLY_SUPPORTED_MODELS`` and
    ``_OOT_SUPPORTED_MODELS`` -- the architectures vLLM refuses with a message of their own)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    defs: dict[str, ast.Dict] = {}
    for stmt in tree.body:
        target = stmt.targets[0] if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else \
            stmt.target if isinstance(stmt, ast.AnnAssign) else None
        if isinstance(target, ast.Name) and isinstance(stmt.value, ast.Dict):
            defs[target.id] = stmt.value
    registered: dict[str, str] = {}
    _dict_entries(defs["_VLLM_MODELS"], defs, registered)
    previous = {k.value: v.value for name in ("_PREVIOUSLY_SUPPORTED_MODELS", "_OOT_SUPPORTED_MODELS") if name in defs
                for k, v in zip(defs[name].keys, defs[name].values)
                if isinstance(k, ast.Constant) and isinstance(v, ast.Constant)}
    return registered, previous


def compute(src: Path) -> tuple[dict, dict[str, dict[str, str]], dict[str, str]]:
    versions = releases(src)
    regs, previous = {}, {}
    for v in versions:
        regs[v], previous[v] = read_registry(src / f"vllm-{v}" / REGISTRY)
    oldest = versions[0]
    first: dict[str, str] = {}
    left_out: dict[str, str] = {}
    for i, v in enumerate(versions):
        for arch, module in sorted(regs[v].items()):
            if arch in regs[oldest] or arch in first or arch in left_out:
                continue
            if module == "transformers":
                left_out[arch] = v
                continue
            line = ".".join(v.split(".")[:2])
            prev = versions[i - 1]
            patch_known = _ver(v)[2] > 0 and _ver(prev)[:2] == _ver(v)[:2] and _ver(prev)[2] == _ver(v)[2] - 1
            first[arch] = v if patch_known else line
    # listed, then dropped without an entry in the newest _PREVIOUSLY_SUPPORTED_MODELS / _OOT_SUPPORTED_MODELS
    # (a rename: Ernie4_5_ForCausalLM -> Ernie4_5ForCausalLM in 0.10.1; ExaoneMoEForCausalLM -> ExaoneMoe... in
    # 0.27.0, the old name back as an alias in 0.32.0): the releases read that do not list it after its first
    unlisted: dict[str, list[str]] = {}
    backend = {a for r in regs.values() for a, mod in r.items() if mod == "transformers"}
    for arch in sorted(set().union(*regs.values()) - set(previous[versions[-1]]) - backend):
        since = next(i for i, v in enumerate(versions) if arch in regs[v])
        gap = [v for v in versions[since:] if arch not in regs[v]]
        if gap:
            unlisted[arch] = gap
    data = {
        "_source": ("vLLM release sdists, vllm/model_executor/models/registry.py: keys of the dicts _VLLM_MODELS "
                    "is built from; regenerate with scripts/first_served.py"),
        "_releases_read": versions,
        "_missing": missing_releases(versions),
        "_oldest": oldest,
        "_left_out_transformers_backend": dict(sorted(left_out.items())),
        "first_served": dict(sorted(first.items(), key=lambda kv: (_ver_key(kv[1]), kv[0]))),
        "unlisted": unlisted,
    }
    return data, regs, previous[versions[-1]]


def _ver_key(v: str) -> tuple[int, ...]:
    t = _ver(v)
    return t if len(t) == 3 else (*t, 0)


# vLLM releases on PyPI between 0.10.0 and 0.34.0 (pip index versions vllm, 2026-12-03); the ones whose sdist is
# not under --src are listed in the JSON so a reader knows which lines were read at one patch only
PYPI = ("0.10.0 0.10.1 0.10.1.1 0.10.2 0.11.0 0.11.1 0.11.2 0.12.0 0.13.0 0.14.0 0.14.1 0.15.0 0.15.1 0.16.0 "
        "0.17.0 0.17.1 0.18.0 0.18.1 0.19.0 0.19.1 0.20.0 0.20.1 0.20.2 0.21.0 0.22.0 0.22.1 0.23.0 0.24.0 "
        "0.25.0 0.25.1 0.26.0 0.27.0 0.27.1 0.28.0 0.29.0 0.30.0 0.31.0 0.32.0 0.33.0 0.34.0").split()


def missing_releases(read: list[str]) -> list[str]:
    return [v for v in PYPI if v not in read]


# LAST_SERVED entries kept at vLLM's label although a later sdist still lists them (why)
KEPT = {"Tarsier2ForConditionalGeneration": "vLLM: 'last version with Transformers v4'; the 0.24.0 sdist still "
                                            "registers it (qwen2_vl.py), whether it loads there is not read"}


def check_removed(regs: dict[str, dict[str, str]], newest_previous: dict[str, str]) -> tuple[list[str], list[str]]:
    """(disagreements of served.LAST_SERVED with the registries, notes where it departs from vLLM's labels)."""
    sys.path.insert(0, str(ROOT))
    from reportgen.estimate.served import LAST_SERVED

    problems, notes = [], []
    newest_previous = {a: v for a, v in newest_previous.items() if re.fullmatch(r"[\d.]+", v)}   # not _OOT's URLs
    for arch, last in sorted(newest_previous.items()):
        if arch not in LAST_SERVED:
            problems.append(f"{arch}: in the newest sdist's _PREVIOUSLY_SUPPORTED_MODELS ({last}), not in LAST_SERVED")
        elif LAST_SERVED[arch] != last:
            notes.append(f"{arch}: LAST_SERVED {LAST_SERVED[arch]}, vLLM's label {last}")
    # served.NEVER_LISTED: refused on every release, so no registry read may list it (nor refuse it by name), and
    # served.UNPARSED_MODEL_TYPES: no release's _CONFIG_REGISTRY (transformers_utils/config.py) may hold the type
    from reportgen.estimate.served import NEVER_LISTED, UNPARSED_MODEL_TYPES

    for arch in sorted(NEVER_LISTED):
        listed = [v for v in regs if arch in regs[v]]
        if listed or arch in newest_previous:
            problems.append(f"{arch}: in served.NEVER_LISTED but listed in {', '.join(listed) or 'the newest sdist'}")
    for mt in sorted(UNPARSED_MODEL_TYPES):
        pat = re.compile(rf"""(^|[\s{{(,])(["']{re.escape(mt)}["']\s*:|{re.escape(mt)}\s*=\s*["'])""", re.M)
        hits = [v for v in regs if (cfg := SRC / f"vllm-{v}" / CONFIG_PY).is_file() and pat.search(cfg.read_text())]
        if hits:
            problems.append(f"{mt}: in served.UNPARSED_MODEL_TYPES but a _CONFIG_REGISTRY key in {', '.join(hits)}")
    for arch in sorted(set(LAST_SERVED) - set(newest_previous)):
        problems.append(f"{arch}: in LAST_SERVED but not in the newest sdist's _PREVIOUSLY_SUPPORTED_MODELS")
    for arch, last in sorted(LAST_SERVED.items()):
        line = _ver(last)[:2]
        listed = [v for v in regs if arch in regs[v]]
        out = problems if arch not in KEPT else notes
        later = [v for v in listed if _ver(v)[:2] > line]
        if later:
            out.append(f"{arch}: 'until v{last}' but listed in {', '.join(later)}" + (f" ({KEPT[arch]})" if arch in KEPT else ""))
        same_line = [v for v in regs if _ver(v)[:2] == line]
        if same_line and not any(arch in regs[v] for v in same_line):
            problems.append(f"{arch}: 'until v{last}' but not listed in {', '.join(same_line)}")
    return problems, notes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", type=Path, default=Path("/work/vllm_src"))
    ap.add_argument("--check", action="store_true", help="exit 1 if the shipped JSON is stale")
    ap.add_argument("--removed", action="store_true", help="check LAST_SERVED against the sdists")
    args = ap.parse_args()
    global SRC
    SRC = args.src
    data, regs, newest_previous = compute(args.src)
    text = json.dumps(data, indent=1) + "\n"
    text = re.sub(r'\[\n\s+("[^\]]*?)\n\s+\]', lambda m: "[" + re.sub(r",\n\s+", ", ", m[1]) + "]", text)
    rc = 0
    if args.check:
        if not OUT.is_file() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is stale: run scripts/first_served.py", file=sys.stderr)
            rc = 1
    else:
        OUT.write_text(text, encoding="utf-8")
        print(f"wrote {OUT}: {len(data['first_served'])} architectures added after {data['_oldest']} "
              f"({len(data['_releases_read'])} releases read; missing {', '.join(data['_missing']) or 'none'})")
    if args.removed:
        problems, notes = check_removed(regs, newest_previous)
        print("\n".join(problems) if problems else "LAST_SERVED agrees with the sdists")
        print("\n".join(f"note: {n}" for n in notes))
        rc = rc or bool(problems)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
