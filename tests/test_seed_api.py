"""The seed's public API (``reportgen.estimate_memory`` / ``MemoryBreakdown``), backed by exact counts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import reportgen

GIB = 2**30
CFG = json.loads((Path(__file__).resolve().parents[1] / "reportgen" / "sources" / "bundled"
                  / "meta-llama--Llama-3.1-8B-Instruct.json").read_text())


def test_breakdown_fields_and_methods():
    b = reportgen.estimate_memory(CFG, sequence_length=8192, batch_size=8, tensor_parallel=1,
                                  quantization_bytes=2, enable_kv_cache=True, framework_overhead_gb=1.0)
    assert isinstance(b, reportgen.MemoryBreakdown)
    assert b.weights == pytest.approx(16_094_076_928 / GIB)         # exact 8.03B params + rotary cache
    assert b.kv_cache == pytest.approx(8 * 8192 * 131_072 / GIB)    # 8 requests x 8192 tokens x 128 KiB
    assert b.total == pytest.approx(b.weights + b.activations + b.kv_cache + b.framework_overhead)
    assert b.per_gpu_memory() == pytest.approx(b.total)
    assert b.fits_in_gpu(80) and not b.fits_in_gpu(20)


def test_kv_is_sharded_across_tp_not_replicated():
    one = reportgen.estimate_memory(CFG, 8192, 8, 1, 2, True, 1.0)
    two = reportgen.estimate_memory(CFG, 8192, 8, 2, 2, True, 1.0)
    assert two.per_gpu["kv_cache"] == pytest.approx(one.per_gpu["kv_cache"] / 2)
    assert two.kv_cache == pytest.approx(one.kv_cache)               # the group's total is unchanged
    assert two.per_gpu["weights"] == pytest.approx(7.51, abs=0.005)   # vLLM TP2 log
    assert two.framework_overhead == 2.0


def test_gqa_replication_beyond_n_kv():
    b = reportgen.estimate_memory(CFG, 1024, 1, 16, 2, True, 0.0)
    assert b.per_gpu["kv_cache"] == pytest.approx(1024 * 32 * 256 * 2 / GIB)   # one KV head per rank


def test_quantization_bytes_and_no_kv():
    b = reportgen.estimate_memory(CFG, 2048, 1, 1, 1, False, 0.0)
    assert b.kv_cache == 0
    assert 8.3 < b.weights < 8.6                                   # int8 linears + fp32 scales, bf16 embeddings
    with pytest.raises(ValueError):
        reportgen.estimate_memory(CFG, 2048, 1, 1, 3, True, 0.0)


def test_accepts_a_transformers_config():
    from transformers import LlamaConfig
    b = reportgen.estimate_memory(LlamaConfig(**CFG), 8192, 1, 1, 2, True, 1.0)
    assert b.weights == pytest.approx(16_094_076_928 / GIB)


def test_import_reportgen_stays_light():
    code = "import sys, reportgen; print('polars' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
