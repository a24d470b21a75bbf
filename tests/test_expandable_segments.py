"""PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True: the weights' allocator blocks are not priced.

vLLM's "Model loading took" counts PyTorch caching-allocator blocks; a weight parameter of >= 20 MiB keeps its
whole 2 MiB-rounded block under vLLM 0.21+'s max_split_size_mb=20 load scope (docs/decisions.md, branch load29).
With expandable segments c10's ``should_split`` splits every block, so the blocks are the tensors.  The setting
is an environment variable of vLLM's process: a job key (``expandable_segments``) and the pasted line's
environment (``PYTORCH_CUDA_ALLOC_CONF`` / ``PYTORCH_ALLOC_CONF``) carry it.
"""
import json
from pathlib import Path

import pytest

from reportgen.arch import build_spec
from reportgen.job import JobError, parse_matrix
from reportgen.matrix import estimate_one
from reportgen.vllm_args import expandable_segments_in, parse_vllm_command

MiB = 2 ** 20


@pytest.fixture(scope="module")
def qwen25_7b():
    path = Path(__file__).resolve().parents[1] / "reportgen" / "sources" / "bundled" / "Qwen--Qwen2.5-7B-Instruct.json"
    return build_spec(json.loads(path.read_text()), "Qwen/Qwen2.5-7B-Instruct")


def test_alloc_conf_strings():
    assert expandable_segments_in("expandable_segments:True")
    assert expandable_segments_in("max_split_size_mb:128, expandable_segments:true")
    assert not expandable_segments_in("expandable_segments:False")
    assert not expandable_segments_in("max_split_size_mb:128")


def test_pasted_environment_sets_it_and_notes_the_rest():
    cmd = parse_vllm_command("PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True,garbage_collection_threshold:0.6 "
                             "vllm serve Qwen/Qwen2.5-7B-Instruct")
    assert cmd.engine["expandable_segments"] is True
    assert any("garbage_collection_threshold:0.6 not modelled" in n for n in cmd.notes)
    assert parse_vllm_command("PYTORCH_ALLOC_CONF=expandable_segments:True vllm serve m").engine[
        "expandable_segments"] is True
    off = parse_vllm_command("PYTORCH_CUDA_ALLOC_CONF=max_split_size_mb:64 vllm serve m")
    assert off.engine["expandable_segments"] is False


def test_job_key():
    assert parse_matrix({"expandable_segments": True}).expandable_segments is True
    assert parse_matrix({}).expandable_segments is False
    with pytest.raises(JobError, match="expandable_segments"):
        parse_matrix({"expandable_segments": "yes"})


def test_weights_drop_by_the_hand_derived_blocks(qwen25_7b):
    """Qwen2.5-7B at 0.29 (load29's hand figure, row 143's 14.29 GiB logged): per layer qkv 31.5 -> 32, o 24.5 -> 26,
    gate_up 259 -> 260, down 129.5 -> 130 MiB (3.5 MiB), 28 layers, + embedding and lm_head 1,039.5 -> 1,040 each:
    99 MiB of blocks that expandable segments do not keep."""
    base = estimate_one(qwen25_7b, 80.0, vllm_version="0.29")
    exp = estimate_one(qwen25_7b, 80.0, vllm_version="0.29", expandable_segments=True)
    assert (base["weights_gib"] - exp["weights_gib"]) * 1024 == pytest.approx(28 * 3.5 + 2 * 0.5, abs=1e-6)
    # the KV gets those bytes back (same budget, same activation)
    assert exp["kv_cache_gib"] - base["kv_cache_gib"] == pytest.approx(99 / 1024, abs=1e-6)
