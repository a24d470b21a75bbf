"""``iter_cell_batches`` on two cores (``matrix._runs_ahead``, ``reportgen.ahead``): the same batches as the serial
loop, in the same order and to the bit, with bounded work ahead; errors at their turn; closing cancels without
hanging; one core (affinity, ``POLARS_MAX_THREADS``) keeps the serial loop.  Not a timed test (docs/decisions.md
"Estimator on both cores")."""

from __future__ import annotations

import gc
import random
import threading
import time
import weakref

import polars as pl
import pytest

from reportgen import ahead
from reportgen.matrix import batches as M      # iter_cell_batches looks _prepare, _cell_frame, the sizes up there
from reportgen.job import Matrix
from test_matrix import GPUS, MATRIX, models
from test_matrix_batches import assert_same_bits

MODELS = models()[:3] * 3            # 9 supported models: several runs with prep_cells below


def batches(monkeypatch, n_workers: int, **kw) -> list[pl.DataFrame]:
    monkeypatch.setattr(ahead, "workers", lambda: n_workers)
    return list(M.iter_cell_batches(kw.pop("models", MODELS), GPUS, kw.pop("mx", MATRIX), **kw))


def assert_same_batches(got: list[pl.DataFrame], want: list[pl.DataFrame]) -> None:
    assert [b.height for b in got] == [b.height for b in want]
    for a, b in zip(got, want):
        assert_same_bits(a, b)


@pytest.mark.parametrize("kw", [
    {"batch_cells": 397, "prep_cells": 2_000},            # several runs, prepared side by side (PAIR_PREP_CELLS)
    {"batch_cells": 1_001, "prep_cells": 1},              # one model a run
    {"batch_cells": 10**6},                               # one run, one batch
    {"batch_cells": 257, "prep_cells": 3_000, "stage0_columns": True},
])
def test_two_workers_give_the_serial_batches(monkeypatch, kw):
    want = batches(monkeypatch, 1, **dict(kw))
    assert len(want) >= 1
    assert_same_batches(batches(monkeypatch, 2, **dict(kw)), want)
    # every run prepared only after the previous one's batches were delivered (no pair held together)
    monkeypatch.setattr(M, "PAIR_PREP_CELLS", 0)
    assert_same_batches(batches(monkeypatch, 2, **dict(kw)), want)


def test_order_holds_when_later_batches_finish_first(monkeypatch):
    want = batches(monkeypatch, 1, batch_cells=211, prep_cells=2_000)
    real, rng = M._cell_frame, random.Random(7)
    delays = [rng.choice([0.0, 0.0, 0.02, 0.05]) for _ in range(len(want) + 10)]
    calls = iter(range(10**6))

    def slow(*a):
        time.sleep(delays[next(calls) % len(delays)])
        return real(*a)

    monkeypatch.setattr(M, "_cell_frame", slow)
    assert_same_batches(batches(monkeypatch, 2, batch_cells=211, prep_cells=2_000), want)


def test_a_failing_batch_or_prepare_raises_at_its_turn(monkeypatch):
    want = batches(monkeypatch, 1, batch_cells=211, prep_cells=2_000)
    real_cells, real_prep = M._cell_frame, M._prepare
    n = iter(range(10**6))

    def cells_fail_fifth(*a):
        if next(n) == 4:
            raise ValueError("batch 4")
        return real_cells(*a)

    monkeypatch.setattr(M, "_cell_frame", cells_fail_fifth)
    monkeypatch.setattr(ahead, "workers", lambda: 2)
    got = []
    with pytest.raises(ValueError, match="batch 4"):
        for b in M.iter_cell_batches(MODELS, GPUS, MATRIX, batch_cells=211, prep_cells=2_000):
            got.append(b)
    assert_same_batches(got, want[:4])

    monkeypatch.setattr(M, "_cell_frame", real_cells)
    runs = iter(range(10**6))

    def prep_fail_third(*a):
        if next(runs) == 2:
            raise RuntimeError("run 2")
        return real_prep(*a)

    monkeypatch.setattr(M, "_prepare", prep_fail_third)
    got = []
    with pytest.raises(RuntimeError, match="run 2"):
        for b in M.iter_cell_batches(MODELS, GPUS, MATRIX, batch_cells=211, prep_cells=2_000):
            got.append(b)
    # every batch of the two runs before it, nothing after
    per_model = MATRIX.n_cells_per_model_gpu() * len(GPUS)
    per_run = max(1, 2_000 // per_model)
    first_two = sum(b.height for b in want) * min(2 * per_run, len(MODELS)) // len(MODELS)
    assert sum(b.height for b in got) == first_two
    assert_same_batches(got, want[:len(got)])


def test_closing_cancels_queued_work_without_waiting(monkeypatch):
    release = threading.Event()
    started = []
    real = M._cell_frame

    def blocked(*a):
        started.append(a[1])
        if len(started) > 1:
            release.wait(5)          # batches after the first hang until released
        return real(*a)

    monkeypatch.setattr(M, "_cell_frame", blocked)
    monkeypatch.setattr(ahead, "workers", lambda: 2)
    gen = M.iter_cell_batches(MODELS, GPUS, MATRIX, batch_cells=211, prep_cells=2_000)
    first = next(gen)
    assert first.height > 0
    t = time.perf_counter()
    gen.close()                      # as a consumer that stops, or a KeyboardInterrupt unwinding it
    assert time.perf_counter() - t < 1.0
    n = len(started)
    release.set()
    time.sleep(0.3)
    assert len(started) == n          # nothing queued started after the close
    assert n <= 1 + 2 + M.AHEAD_CELLS // 211


def test_keyboard_interrupt_in_the_consumer_unwinds(monkeypatch):
    monkeypatch.setattr(ahead, "workers", lambda: 2)
    gen = M.iter_cell_batches(MODELS, GPUS, MATRIX, batch_cells=211, prep_cells=2_000)
    with pytest.raises(KeyboardInterrupt):
        for i, _ in enumerate(gen):
            if i == 2:
                raise KeyboardInterrupt
    t = time.perf_counter()
    gen.close()
    assert time.perf_counter() - t < 1.0
    time.sleep(0.2)
    assert not [th for th in threading.enumerate() if th.name.startswith("reportgen-ahead") and th.is_alive()]


@pytest.mark.parametrize("runs, most", [(0, 0), (2.5, 1), (3, 2)])
def test_prepared_chunks_alive_stay_within_the_budget(monkeypatch, runs, most):
    """The memory bound: the prepared chunks alive when a run is prepared (those whose batches are not all delivered,
    and those prepared ahead) hold, with it, at most max(``prep_cells``, ``PAIR_PREP_CELLS``) cells; with
    ``PAIR_PREP_CELLS`` 0 (big chunks) a run is prepared only when every earlier chunk is released, as in the serial
    loop."""
    per_run = len(GPUS) * MATRIX.n_cells_per_model_gpu()        # prep_cells=1: one model a run
    monkeypatch.setattr(M, "PAIR_PREP_CELLS", int(runs * per_run))
    monkeypatch.setattr(M, "AHEAD_CELLS", 2 * 97)     # a window of 2 batches: earlier runs' batches delivered soon
    alive: list = []
    worst = []
    real = M._prepare
    lock = threading.Lock()

    def tracked(*a, **k):
        with lock:
            gc.collect()
            worst.append(sum(w() is not None for w in alive))
        r = real(*a, **k)
        assert r.n_cells == per_run
        with lock:
            alive.append(weakref.ref(r))
        return r

    monkeypatch.setattr(M, "_prepare", tracked)
    n = sum(b.height for b in batches(monkeypatch, 2, batch_cells=97, prep_cells=1))
    assert n == len(MODELS) * per_run
    assert len(alive) == len(MODELS)
    assert max(worst) == most


def test_one_core_keeps_the_serial_loop(monkeypatch):
    monkeypatch.setattr(M, "_runs_ahead", lambda *a: (_ for _ in ()).throw(AssertionError("pipelined")))
    monkeypatch.setenv("POLARS_MAX_THREADS", "1")
    assert ahead.workers() == 1
    assert sum(b.height for b in M.iter_cell_batches(MODELS[:1], GPUS, MATRIX)) > 0
    monkeypatch.delenv("POLARS_MAX_THREADS")
    monkeypatch.setattr(ahead.os, "sched_getaffinity", lambda pid: {0})
    assert ahead.workers() == 1
    assert sum(b.height for b in M.iter_cell_batches(MODELS[:1], GPUS, MATRIX)) > 0
    monkeypatch.setattr(ahead.os, "sched_getaffinity", lambda pid: {0, 1, 2})
    monkeypatch.setenv("POLARS_MAX_THREADS", "2")
    assert ahead.workers() == 2


def test_empty_jobs(monkeypatch):
    monkeypatch.setattr(ahead, "workers", lambda: 2)
    assert list(M.iter_cell_batches(MODELS, GPUS, Matrix(concurrency=[]))) == []
    assert list(M.iter_cell_batches([], GPUS, MATRIX)) == []


_STREAMED_RUN = """
import sys, time
import reportgen.run as run_mod
from reportgen import ahead
from reportgen.matrix import batches as M
from reportgen.cli import main
run_mod.STREAM_CELLS, run_mod.STREAM_PART_CELLS, run_mod.STREAM_PREP_CELLS = 50, 64, 200
real = M._cell_frame
def slow(*a):                      # a long streamed run: the signal lands while batches are computed ahead
    time.sleep(0.05)
    return real(*a)
M._cell_frame = slow
ahead.workers = lambda: 2
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("sig, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_mid_stream_unwinds_the_workers(tmp_path, sig, code):
    """``reportgen run`` of a streamed job signalled while ``_runs_ahead`` has batches queued: the documented exit
    code, no traceback, no temporary directory left, and no wait for the queued work (docs/decisions.md "SIGINT
    during a polars call": the main thread waits in ``Future.result``, which a signal interrupts)."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    job = tmp_path / "job.toml"
    job.write_text('name = "s"\nmodels = ["meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen3-8B"]\n'
                   'gpus = ["H100", "L40S"]\nformats = ["parquet"]\n[matrix]\ntp = [1, 2, 4]\n'
                   'max_model_len = [4096, 8192, 16384, 32768]\nconcurrency = [1, 8, 32, 64]\n', encoding="utf-8")
    parent = tmp_path / "runs"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
           "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", _STREAMED_RUN, "run", str(job), "--out", str(parent / "r"), "-q"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not list(parent.glob(".*tmp-*/results.parquet/part-*")):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "no part written"
            time.sleep(0.02)
        t = time.monotonic()
        proc.send_signal(getattr(signal, sig))
        _, stderr = proc.communicate(timeout=60)
        waited = time.monotonic() - t
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    assert list(parent.iterdir()) == []
    assert waited < 20
