"""Speed of the architecture layer: spec + counts for one config, after import.

Target (issue 3): < 5 ms per config once transformers is imported.  Measured
over every bundled reference config: the first build (pays the transformers
import and the per-model-type module import) is reported apart, then each
config is built ``REPEAT`` times (``build_spec`` + params_total + params_active
+ per-component counts + KV bytes).  Per config we keep the best of the
repeats (timeit's convention: on a shared 2-core machine noise only adds) and
also show the median of the repeats.

Run: .venv/bin/python benchmarks/bench_arch.py
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_MS = 5.0
REPEAT = 15


def _configs() -> list[tuple[str, dict]]:
    bundled = ROOT / "reportgen" / "sources" / "bundled"
    return [(p.stem.replace("--", "/"), json.loads(p.read_text()))
            for p in sorted(bundled.glob("*.json")) if not p.name.endswith(".hf_quant_config.json")]


def _one(build_spec, config: dict) -> None:
    spec = build_spec(config)
    if spec.unsupported_reason is None:
        spec.params_total, spec.params_active, spec.params_by_component(), spec.kv_bytes_per_token(2)


def main() -> int:
    configs = _configs()
    t0 = time.perf_counter()
    from reportgen.arch import build_spec

    t_pkg = time.perf_counter() - t0
    t0 = time.perf_counter()
    _one(build_spec, configs[0][1])
    t_first = time.perf_counter() - t0
    for _, cfg in configs:  # warm: import each model type's config module once
        _one(build_spec, cfg)

    rows = []
    for model, cfg in configs:
        times = []
        for _ in range(REPEAT):
            t0 = time.perf_counter()
            _one(build_spec, cfg)
            times.append((time.perf_counter() - t0) * 1000)
        rows.append((min(times), statistics.median(times), model))
    rows.sort()
    med = statistics.median(r[0] for r in rows)
    worst = rows[-1]
    print(f"import reportgen.arch            {t_pkg * 1000:8.1f} ms  (transformers not imported yet)")
    print(f"first build (imports transformers) {t_first * 1000:6.0f} ms  (one-off per process)")
    print(f"configs measured                 {len(rows):8d}")
    print(f"median config (best of {REPEAT})     {med:8.2f} ms   target < {TARGET_MS} ms  {'OK' if med < TARGET_MS else 'MISS'}")
    print(f"slowest config ({worst[2]}) {worst[0]:.2f} ms   target < {TARGET_MS} ms  "
          f"{'OK' if worst[0] < TARGET_MS else 'MISS'}")
    print("slowest five: best / median of repeats")
    for best, median, model in rows[-5:]:
        print(f"   {best:6.2f} / {median:6.2f} ms  {model}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
