"""Target (PRODUCT §6): a 50-million-cell job streamed to partitioned Parquet with peak RSS < 2 GB.

    .venv/bin/python benchmarks/bench_stream.py [--cells-scale 1.0]

Builds a job of ~110 local model directories (copies of the bundled configs, so no network)
x 25 GPUs x 48 layouts x 2 weight dtypes x 2 KV dtypes x 8 contexts x 6 concurrencies x 2
utilizations ~ 50 M cells, runs it through `reportgen run` in this process, and prints
wall time, cells/s and peak RSS beside the targets.  Not a test: machines here are shared.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_RSS_GB = 2.0
TARGET_CELLS = 50_000_000


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=110)
    args = ap.parse_args()

    from reportgen.arch import build_spec
    from reportgen.catalog import load_catalog
    from reportgen.job import parse_job
    from reportgen.run import prepare, run_job

    bundled = ROOT / "reportgen" / "sources" / "bundled"
    configs = []
    for f in sorted(bundled.glob("*.json")):
        if f.name.endswith(".hf_quant_config.json"):
            continue
        cfg = json.loads(f.read_text())
        if not build_spec(cfg).unsupported_reason:
            configs.append(f)
    tmp = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    try:
        models = []
        for i in range(args.models):
            d = tmp / "models" / f"m{i:03d}"
            d.mkdir(parents=True)
            shutil.copy(configs[i % len(configs)], d / "config.json")
            models.append(str(d))
        gpus = [s.id for s in load_catalog()][:25]
        job = parse_job({"name": "bench-stream", "models": models, "gpus": gpus, "formats": ["parquet"],
                         "matrix": {"tp": [1, 2, 4, 8], "pp": [1, 2, 4], "dp": [1, 2], "ep": [False, True],
                                    "weight_dtype": ["checkpoint", "fp8"], "kv_cache_dtype": ["auto", "fp8"],
                                    "max_model_len": [2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144],
                                    "concurrency": [1, 4, 16, 32, 64, 128],
                                    "gpu_memory_utilization": [0.9, 0.95], "max_nodes": 4}})
        prepared = prepare(job)
        t0 = time.perf_counter()
        res = run_job(prepared, tmp / "run", quiet=True)
        wall = time.perf_counter() - t0
        rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
        parts = list((res.run_dir / "results.parquet").glob("*.parquet"))
        size_gb = sum(p.stat().st_size for p in parts) / 1e9
        print(f"cells            {res.cells:>14,}   (target job size {TARGET_CELLS:,})")
        print(f"wall             {wall:>14.1f} s  ({res.cells / wall / 1e6:.2f} M cells/s incl. Parquet)")
        print(f"peak RSS         {rss_gb:>14.2f} GB  target < {TARGET_RSS_GB} GB  "
              f"{'OK' if rss_gb < TARGET_RSS_GB else 'MISSED'}")
        print(f"parquet parts    {len(parts):>14,}   {size_gb:.2f} GB on disk")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
