"""Regenerate the generated tables in README.md (CSV columns, GPU catalog).

    .venv/bin/python scripts/readme_tables.py        # rewrite README.md in place
    .venv/bin/python scripts/readme_tables.py --check  # exit 1 if README.md is stale (used by tests)

Each table lives between `<!-- NAME:start -->` and `<!-- NAME:end -->` markers,
so hand-written prose around it is never touched.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def columns_table() -> str:
    from reportgen.results import COLUMNS, ERROR_COLUMNS

    lines = ["| # | column | type | meaning |", "|---|---|---|---|"]
    cell = lambda text: text.replace("|", "\\|")   # noqa: E731 - a literal pipe would split the cell
    lines += [f"| {i} | `{n}` | {d} | {cell(m)} |" for i, (n, d, m) in enumerate(COLUMNS, start=1)]
    lines += ["", "`errors.csv`:", "", "| column | type | meaning |", "|---|---|---|"]
    lines += [f"| `{n}` | {d} | {cell(m)} |" for n, d, m in ERROR_COLUMNS]
    return "\n".join(lines)


def gpus_table() -> str:
    from reportgen.catalog import load_catalog

    lines = ["| SKU id | name | usable GiB | GPUs/node | $/GPU-hr | aliases |", "|---|---|---|---|---|---|"]
    for s in load_catalog():
        price = f"{s.price_usd_hr:g}" if s.price_usd_hr is not None else ""
        lines.append(f"| `{s.id}` | {s.name} | {s.usable_memory_gib:.2f} | {s.gpus_per_node} | {price} | "
                     f"{', '.join(s.aliases)} |")
    return "\n".join(lines)


def families_table() -> str:
    from reportgen.arch.registry import ADAPTERS, UNSUPPORTED, WEIGHTS_ONLY

    supported = ", ".join(f"`{t}`" for t in sorted(ADAPTERS) if t not in WEIGHTS_ONLY)
    lines = [f"Exact (parameters and KV geometry checked against PyTorch's meta device and vLLM's model "
             f"code): {supported}.", "", "Refused with a reason (never a look-alike number):", "",
             "| model_type | why |", "|---|---|"]
    lines += [f"| `{t}` | {why.split(': ', 1)[-1]} |" for t, why in sorted({**UNSUPPORTED, **WEIGHTS_ONLY}.items())]
    lines += ["", "Any other model_type: `unsupported` (\"model_type X is not supported\")."]
    return "\n".join(lines)


TABLES = {"columns": columns_table, "gpus": gpus_table, "families": families_table}


def render(text: str) -> str:
    for name, fn in TABLES.items():
        pat = re.compile(rf"(<!-- {name}:start -->\n)(?:.*?\n)?(<!-- {name}:end -->)", re.S)
        text = pat.sub(lambda m: m.group(1) + fn() + "\n" + m.group(2), text)
    return text


def main() -> int:
    readme = ROOT / "README.md"
    old = readme.read_text(encoding="utf-8")
    new = render(old)
    if "--check" in sys.argv:
        if new != old:
            print("README.md tables are stale: run scripts/readme_tables.py", file=sys.stderr)
            return 1
        return 0
    readme.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
