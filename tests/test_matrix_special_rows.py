"""``matrix._prepare`` runs the per-length DeepSeek-V4 (``exprs.compressed_lens``) and encoder
(``exprs.encoder_lens``) terms only on the rows they apply to (``matrix._special_rows``), all lengths in
one frame, and ``lens_pass`` alone -- with ``exprs.encoder_lens_off`` -- on the other rows of the chunk
(docs/decisions.md "Estimator speed", branch speedprep).  The result must be what the full terms give on
every row, bit for bit: ``_special_rows`` patched to select every row is that full evaluation.

Models: a video-capable Qwen2.5-VL (``vid_f``), Gemma-3 (the SigLIP tower peak ``tow_t``), plain text
models in the same chunk, and DeepSeek-V4 (its own chunk: ``matrix._kind_runs``); a small GPU so some
rows are invalid or load-OOM (null ``_nbv``: not special); PP 2 (two slots); with and without the
stage-0 columns and a fixed KV size."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from reportgen.matrix import cells as mx_mod    # _prepare looks _special_rows up there
from reportgen.arch import build_spec
from reportgen.job import Matrix
from reportgen.matrix import GpuLike, ModelEntry, evaluate_matrix_lazy, iter_cell_batches
from test_matrix_batches import assert_same_bits

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [(ROOT / "tests" / "data" / "configs_2026", "Qwen/Qwen2.5-VL-7B-Instruct"),
           (ROOT / "reportgen" / "sources" / "bundled", "Qwen/Qwen3-8B"),
           (ROOT / "reportgen" / "sources" / "bundled", "google/gemma-3-12b-it"),
           (ROOT / "reportgen" / "sources" / "bundled", "meta-llama/Llama-3.2-1B-Instruct"),
           (ROOT / "reportgen" / "sources" / "bundled", "deepseek-ai/DeepSeek-V4-Flash")]
GPUS = [GpuLike("h100", "H100", 79.19, 8, 2.0), GpuLike("l4", "L4", 22.05, 8, 0.8),
        GpuLike("b200", "B200", 178.4, 8, 5.0)]


def _entries() -> list[ModelEntry]:
    out = []
    for where, mid in SOURCES:
        spec = build_spec(json.loads((where / (mid.replace("/", "--") + ".json")).read_text()), mid)
        out.append(ModelEntry(mid, spec, None, "bundled"))
    return out


def _matrix(**kw) -> Matrix:
    return Matrix(tp=[1, 2, 8], pp=[1, 2], dp=[1], ep=[False], weight_dtype=["checkpoint", "fp8"],
                  kv_cache_dtype=["auto", "fp8"], max_model_len=[4096, 32768, 131072], concurrency=[1, 16],
                  gpu_memory_utilization=[0.9], **kw)


def _every_row(u, dsv4, enc):
    return np.arange(u.height, dtype=np.int64) if (dsv4 or enc) else np.zeros(0, dtype=np.int64)


@pytest.mark.parametrize("stage0", [False, True])
@pytest.mark.parametrize("fixed_kv", [None, 12 * 2**30])
def test_special_rows_apart_equal_the_full_terms_on_every_row(monkeypatch, stage0, fixed_kv):
    ents, mx = _entries(), _matrix(kv_cache_memory_bytes=fixed_kv)
    got = evaluate_matrix_lazy(ents, GPUS, mx, stage0_columns=stage0).collect()
    seen = {}
    split = mx_mod._special_rows

    def spy(u, dsv4, enc):
        on = split(u, dsv4, enc)
        seen[(dsv4, enc)] = (on.size, u.height)
        return on

    monkeypatch.setattr(mx_mod, "_special_rows", spy)
    evaluate_matrix_lazy(ents, GPUS, mx, stage0_columns=stage0).collect()
    # both kinds of special chunk ran, each with some rows apart and some not
    assert set(seen) == {(False, True), (True, False)}
    assert all(0 < n < h for n, h in seen.values())
    monkeypatch.setattr(mx_mod, "_special_rows", _every_row)
    want = evaluate_matrix_lazy(ents, GPUS, mx, stage0_columns=stage0).collect()
    assert_same_bits(got, want)
    # the lengths move the video model's activation on one (layout, GPU) row (its terms ran), not a text model's
    key = ["model", "gpu", "tp", "pp", "weights_as", "kv_cache_dtype"]
    n = {m: v for m, v in got.filter(pl.col("status") != "invalid_layout").group_by(key)
         .agg(pl.col("activation_gib").n_unique().alias("n")).group_by("model").agg(pl.col("n").max()).iter_rows()}
    assert n["Qwen/Qwen2.5-VL-7B-Instruct"] >= 2 and n["Qwen/Qwen3-8B"] == 1

def test_batches_equal_the_full_terms(monkeypatch):
    ents, mx = _entries(), _matrix()
    got = list(iter_cell_batches(ents, GPUS, mx, batch_cells=1_001))
    monkeypatch.setattr(mx_mod, "_special_rows", _every_row)
    want = list(iter_cell_batches(ents, GPUS, mx, batch_cells=1_001))
    assert_same_bits(pl.concat(got), pl.concat(want))
