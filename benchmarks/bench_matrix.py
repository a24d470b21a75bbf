#!/usr/bin/env python
"""Throughput of the estimator: matrix cells per second (target >= 5 million on 2 cores).

Why this shape: a realistic job -- every bundled model (42), 25 GPU SKUs (the
size of the catalog, as in PRODUCT §6's example), a layout sweep (tp x pp x dp
x ep = 48), two weight and two KV dtypes, four contexts, four concurrency
targets, two utilizations: 7.5 million cells.  Hybrids are in the mix: the bundled
Qwen3-Next, Qwen3.5-35B-A3B, Qwen3.5-9B (and its text stack) with Gated DeltaNet state layers,
Nemotron-3-Nano (Nemotron-H, Mamba-2); flagships too: GLM-5 (sparse MLA), Kimi-K2.5, DeepSeek-V3,
MiniMax-M2.5 (the script refuses to run without a hybrid and a flagship).  The model configs are
parsed beforehand (that is the sources/arch layer's cost, not the estimator's).  Not a timed test:
run it by hand.

Two figures, each timed end to end (per-model Python precompute + every polars pass), in
alternating runs so both see the same machine:

- **batches** (the figure held against the target): ``reportgen.matrix.iter_cell_batches`` --
  every cell estimated and delivered to the caller as a polars DataFrame (Arrow columnar buffers)
  of <= 262,144 cells, which the caller drops after counting it: what a writer that streams the
  cells (the huge-job Parquet parts) sees.  The whole matrix never exists at once;
- **frame**: ``reportgen.matrix.evaluate_matrix`` -- the same cells as one materialised 7.5 M-row
  frame (2.8 GB), the path of jobs whose reports need every cell at once.

Usage: python benchmarks/bench_matrix.py [--repeat 3] [--scale 2] [--mode both|batches|frame]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reportgen.arch import build_spec  # noqa: E402
from reportgen.job import Matrix  # noqa: E402
from reportgen.matrix import GpuLike, ModelEntry, evaluate_matrix, iter_cell_batches  # noqa: E402

TARGET_CELLS_PER_S = 5_000_000
FLAGSHIPS = {"zai-org/GLM-5", "moonshotai/Kimi-K2.5", "deepseek-ai/DeepSeek-V3", "MiniMaxAI/MiniMax-M2.5"}
BUNDLED = ROOT / "reportgen" / "sources" / "bundled"


def bundled_models() -> list[ModelEntry]:
    out = []
    for p in sorted(BUNDLED.glob("*.json")):
        if p.name.endswith(".hf_quant_config.json"):
            continue
        mid = p.stem.replace("--", "/")
        spec = build_spec(json.loads(p.read_text()), mid)
        out.append(ModelEntry(mid, spec, None, "bundled"))
        if spec.model_type == "qwen3_5":
            # hybrids in the mix: the composite waits for its vision tower, its text stack is a Gated-DeltaNet
            # hybrid like the bundled Qwen3-Next (state layers, raised block size, state groups)
            text = dict(json.loads(p.read_text())["text_config"])
            out.append(ModelEntry(mid + "-text", build_spec(text, mid + "-text"), None, "bundled"))
    return out


def gpus(n: int) -> list[GpuLike]:
    mems = [79.19, 139.8, 44.42, 39.38, 22.05, 94.0, 178.4, 31.36, 47.4, 63.8]
    return [GpuLike(f"gpu{i}", f"GPU {i}", mems[i % len(mems)], 8, 1.0 + i) for i in range(n)]


def matrix(scale: int) -> Matrix:
    return Matrix(tp=[1, 2, 4, 8], pp=[1, 2, 4], dp=[1, 2], ep=[False, True], weight_dtype=["checkpoint", "fp8"],
                  kv_cache_dtype=["auto", "fp8"], max_model_len=[4096, 8192, 32768, 131072][: 2 * scale or 4],
                  concurrency=[1, 8, 32, 128], gpu_memory_utilization=[0.9, 0.95])


def run_batches(models, gs, mx) -> int:
    n = 0
    for batch in iter_cell_batches(models, gs, mx):
        n += batch.height
    return n


def run_frame(models, gs, mx) -> int:
    return evaluate_matrix(models, gs, mx).height


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--gpus", type=int, default=25)
    ap.add_argument("--scale", type=int, default=2, help="1 = half the contexts, 2 = all four")
    ap.add_argument("--mode", choices=("both", "batches", "frame"), default="both")
    a = ap.parse_args(argv)
    models = bundled_models()
    assert any(any(l.state is not None for l in m.spec.layers_kv) for m in models), "no hybrid in the mix"
    assert any(m.model in FLAGSHIPS for m in models), "no flagship in the mix"
    mx, gs = matrix(a.scale), gpus(a.gpus)
    modes = {"batches": run_batches, "frame": run_frame}
    modes = modes if a.mode == "both" else {a.mode: modes[a.mode]}
    walls: dict[str, list[float]] = {m: [] for m in modes}
    cpus: dict[str, list[float]] = {m: [] for m in modes}
    cells, loads = 0, []
    for _ in range(a.repeat):
        for name, fn in modes.items():             # alternating: both modes see the same machine
            loads.append(os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"))
            t0, c0 = time.perf_counter(), time.process_time()
            n = fn(models, gs, mx)
            walls[name].append(time.perf_counter() - t0)
            cpus[name].append(time.process_time() - c0)
            assert cells in (0, n), "the modes disagree on the number of cells"
            cells = n
    hybrids = [m.model for m in models if any(l.state is not None for l in m.spec.layers_kv)]
    flagships = [m.model for m in models if m.model in FLAGSHIPS]
    print(f"models {len(models)} ({len(hybrids)} hybrid, {len(flagships)} flagship)  gpus {len(gs)}  cells {cells:,}  "
          f"on {os.cpu_count()} cores; load average {min(loads):.2f}-{max(loads):.2f} during the runs")
    print(f"hybrids: {', '.join(hybrids)}\nflagships: {', '.join(flagships)}")
    what = {"batches": "cells estimated and delivered as DataFrame batches of <= 262,144 cells",
            "frame": "cells estimated into one materialised DataFrame"}
    cores = min(os.cpu_count() or 1, 2)
    for name in modes:
        best, med = min(walls[name]), statistics.median(walls[name])
        rate = cells / best
        print(f"{name:8s} {what[name]}:\n"
              f"         best {best:.3f} s wall -> {rate / 1e6:.2f} M cells/s   (target >= {TARGET_CELLS_PER_S / 1e6:.0f} M/s)"
              f"  {'OK' if rate >= TARGET_CELLS_PER_S else 'BELOW TARGET'};  median {med:.3f} s -> "
              f"{cells / med / 1e6:.2f} M/s  ({a.repeat} runs)")
        cpu = min(cpus[name])
        print(f"         CPU time {cpu:.3f} s -> {cells / (cpu / cores) / 1e6:.2f} M cells/s if the {cores} cores were ours"
              f" alone (the wall figure depends on what else runs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
