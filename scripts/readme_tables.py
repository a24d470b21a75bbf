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

    lines = ["| SKU id | name | usable GiB | GPUs/node | interconnect | $/GPU-hr | aliases |",
             "|---|---|---|---|---|---|---|"]
    for s in load_catalog():
        price = f"{s.price_usd_hr:g}" if s.price_usd_hr is not None else ""
        lines.append(f"| `{s.id}` | {s.name} | {s.usable_memory_gib:.2f} | {s.gpus_per_node} | {s.interconnect} | "
                     f"{price} | {', '.join(s.aliases)} |")
    return "\n".join(lines)


def families_table() -> str:
    from reportgen.arch.registry import ADAPTERS, UNSUPPORTED, VLLM_FILES, WEIGHTS_ONLY

    by_file: dict[str, list[str]] = {}
    for t in sorted(ADAPTERS):
        if t not in WEIGHTS_ONLY:
            by_file.setdefault(VLLM_FILES[t], []).append(f"`{t}`")
    lines = ["Exact (parameters and KV geometry checked against PyTorch's meta device and vLLM's model code), "
             "each model_type with the vLLM model file it follows (`registry.VLLM_FILES`; a bare name is "
             "`vllm/model_executor/models/<name>`, the family module in `reportgen/arch/families/` cites the "
             "commit read):", "", "| model_type | vLLM file |", "|---|---|"]
    rows = sorted(by_file.items(), key=lambda kv: kv[1][0].strip("`"))
    lines += [f"| {', '.join(types)} | `{f}` |" for f, types in rows]
    lines += ["", backend_line(ADAPTERS), "", removed_line(ADAPTERS), "", added_line(ADAPTERS), "",
             "Refused with a reason (never a look-alike number):", "",
             "| model_type | why |", "|---|---|"]
    lines += [f"| `{t}` | {why.split(': ', 1)[-1]} |" for t, why in sorted({**UNSUPPORTED, **WEIGHTS_ONLY}.items())]
    lines += ["", fallback_line()]
    lines += ["", "Any other model_type: `unsupported` (\"model_type X is not supported\")."]
    return "\n".join(lines)


def backend_line(adapters) -> str:
    """The supported model_types vLLM serves through its Transformers backend from some release on
    (estimate/tf_backend.py BACKEND_FROM, by the transformers causal-LM class of each model_type)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES as CAUSAL

    from reportgen.estimate.tf_backend import BACKEND_FROM

    by_release: dict[str, list[str]] = {}
    for t in sorted(adapters):
        arch = CAUSAL.get(t)
        if isinstance(arch, str) and arch in BACKEND_FROM:
            by_release.setdefault(BACKEND_FROM[arch][0].removesuffix(".0"), []).append(f"`{t}`")
    groups = "; ".join(f"{', '.join(ts)} from {v}" for v, ts in
                       sorted(by_release.items(), key=lambda kv: tuple(int(x) for x in kv[0].split("."))))
    return ("Served through vLLM's Transformers backend (`transformers/`: the transformers class with vLLM's "
            "layers) from a release on -- the file above before it, that backend from it (`estimate/tf_backend.py`, "
            "generated from the release sdists by `scripts/tf_backend_releases.py`; no `get_rope` cache there, "
            f"configs only the transformers class builds priced from that release): {groups}.")


def fallback_line() -> str:
    """Architectures read through another transformers class when their model_type has none (parse.py)."""
    from reportgen.arch.parse import ARCHITECTURE_FALLBACK

    pairs = ", ".join(f"`{a}` -> `{t}`" for a, t in ARCHITECTURE_FALLBACK.items())
    return ("A model_type this transformers lacks is read by its `architectures` entry "
            f"(`parse.ARCHITECTURE_FALLBACK`): {pairs}.")


def removed_line(adapters) -> str:
    """The supported model types whose architecture later vLLM releases removed (estimate/served.py)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES as CAUSAL

    from reportgen.estimate.served import LAST_SERVED, REGISTRY_COMMIT

    gone = [f"`{t}` ({CAUSAL[t]}, until {LAST_SERVED[CAUSAL[t]]})" for t in sorted(adapters)
            if CAUSAL.get(t) in LAST_SERVED]
    return (f"Priced only for the vLLM releases that still serve them (vLLM registry "
            f"`_PREVIOUSLY_SUPPORTED_MODELS` @{REGISTRY_COMMIT}; a later `vllm_version` makes their cells "
            f"`unsupported` with vLLM's reason): {', '.join(gone)}.")


def added_line(adapters) -> str:
    """The supported model types whose architecture vLLM's registry lists only from a release after 0.10
    (estimate/served.py FIRST_SERVED, generated from the release sdists by scripts/first_served.py)."""
    from transformers.models.auto import modeling_auto as auto

    from reportgen.estimate.served import FIRST_SERVED

    names = (auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, auto.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES)
    dated = []
    for t in sorted(adapters):
        # a 0.10.x patch addition is left out: job files and --vllm-version keep major.minor ("0.10")
        # every entry postdates 0.10.0 (the table lists what the 0.10.0 registry lacks); "0.10" is 0.10.0 (branch patchver)
        archs = sorted({m[t] for m in names if t in m and m[t] in FIRST_SERVED})
        if archs:
            dated.append(f"`{t}` (" + ", ".join(f"{a} from {FIRST_SERVED[a]}" for a in archs) + ")")
    return ("Priced only from the first vLLM release whose model registry lists the config's architecture (read "
            "from the 0.10.0 .. 0.34.0 release sdists, `reportgen/estimate/first_served.json`; an older `vllm_version` "
            "makes their cells `unsupported` with vLLM's \"not supported for now\"; `vllm_version` keeps its patch and a "
            "bare major.minor is its .0 release, so an architecture first listed in a patch release is refused before "
            "it): " + ", ".join(dated) + ".")


EXAMPLE_MODELS = ("deepseek-ai/DeepSeek-V2-Lite-Chat", "meta-llama/Llama-3.1-8B-Instruct",
                  "meta-llama/Meta-Llama-3.1-70B", "openai/gpt-oss-20b")


def example_table() -> str:
    """A slice of the default job's results (bundled configs, default vLLM profile), computed now."""
    import json

    from reportgen.arch import build_spec
    from reportgen.catalog import load_catalog
    from reportgen.estimate.profiles import profile_for
    from reportgen.job import DEFAULT_VLLM_VERSION, Matrix, extensible_kv_cache, resolved_utilizations
    from reportgen.matrix import ModelEntry, evaluate_matrix
    from reportgen.sources.bundled import bundled_dir

    entries = [ModelEntry(m, build_spec(json.loads((bundled_dir() / f"{m.replace('/', '--')}.json").read_text())))
               for m in EXAMPLE_MODELS]
    mx = Matrix(tp=[1, 2, 4], pp=[1], weights_as=["bf16"], max_model_len=[32768], concurrency=[32])
    df = evaluate_matrix(entries, [load_catalog().get("H100")], mx)
    profile, _ = profile_for(DEFAULT_VLLM_VERSION)
    lines = ["A slice of `results.parquet`: H100 80GB, bf16 weights, 32k context, 32 concurrent requests, PP 1",
             f"(GiB per GPU; vLLM {DEFAULT_VLLM_VERSION}, profile {profile.label}, vLLM's default "
             f"`gpu_memory_utilization` {resolved_utilizations(mx)[0]:g}"
             + (" with the extensible KV cache" if extensible_kv_cache(mx) else "") + ";",
             "regenerated by `scripts/readme_tables.py`). `no_fit` means the 32 requests of 32k tokens need more KV",
             "cache than is left, or the model does not fit at all.", "",
             "| model | tp | status | weights | activ. | non-torch | graphs | KV GiB | KV tokens | max conc. |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    num = lambda v, spec=".2f": "" if v is None else format(v, spec)   # noqa: E731 - blank where no figure
    for r in df.sort(["model", "tp"]).iter_rows(named=True):
        figures = [num(r[c]) for c in ("weights_gib", "activation_gib", "non_torch_gib", "cuda_graph_gib",
                                       "kv_cache_gib")]
        lines.append(f"| {r['model']} | {r['tp']} | {r['status']} | " + " | ".join(figures)
                     + f" | {num(r['kv_cache_tokens'], 'd')} | {num(r['max_concurrency'])} |")
    return "\n".join(lines)


TABLES = {"columns": columns_table, "gpus": gpus_table, "families": families_table, "example": example_table}


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
