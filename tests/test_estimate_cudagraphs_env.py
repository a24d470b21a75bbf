"""VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS set by the deployment (issue 10: "its default changed more than once").

vLLM reads it from 0.18.0 (off by default in 0.18 / 0.19, on from 0.20): on, ``determine_available_memory`` takes
``profile_cudagraph_memory()`` from the KV budget; off, it skips the estimate and the graphs are captured after the
cache is sized (vllm 0.19.1 sdist envs.py:1654-1656, 0.34.0 sdist v1/worker/gpu_worker.py:746-768).  The checks below
use what vLLM's code makes exact: a start that logged its estimate without taking it (every v0.19 H100 row prints
"Estimated CUDA graph memory") would, with the variable on, have had exactly that much less KV memory -- the
counterfactual the estimator must reproduce from its own graph model.
"""

from __future__ import annotations

import dataclasses

import pytest
from cli_support import estimate_line

from log_rows_support import vvl
from reportgen.estimate.profiles import PROFILES, budget_graph_factor, profile_for
from reportgen.job import JobError, Matrix, parse_matrix
from reportgen.vllm_args import VllmArgsError, parse_vllm_command

ENV = "VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS"


def _v019_rows_with_estimate() -> list[dict]:
    rows = [r for r in vvl.load_rows(vvl.CSV)
            if (r.get("vllm_version") or "").startswith("0.19.0") and vvl._f(r.get("cuda_graph_estimated_gib"))
            and vvl._f(r.get("kv_cache_gib")) and not vvl.interference(r)]
    # rows 101-108 / 126-133 repeat one start (same model and settings): one of each figure set is enough
    seen, out = set(), []
    for r in rows:
        key = (r["model"], r["tensor_parallel_size"], r["kv_cache_gib"], r["cuda_graph_estimated_gib"])
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def test_v019_rows_with_the_variable_on_lose_their_printed_estimate():
    """Every v0.19.0 H100 start printing its (untaken) estimate, re-run with the variable on: the KV memory is the
    logged KV minus the printed estimate within the 3 % KV-memory target, and the estimator's drop is its own
    captured-graph model x the 0.20 profile's estimate / captured scale (0.89, fitted on these rows' printed
    estimates)."""
    rows = _v019_rows_with_estimate()
    assert len(rows) >= 15
    errors = {}
    for r in rows:
        case = vvl.make_case(r)
        assert case is not None, r["row_id"]
        off = vvl.predict(case)
        on_matrix = dataclasses.replace(case.matrix, memory_profiler_estimate_cudagraphs=True)
        on = vvl.predict(dataclasses.replace(case, matrix=on_matrix))
        target = vvl._f(r["kv_cache_gib"]) - vvl._f(r["cuda_graph_estimated_gib"])
        errors[r["row_id"]] = on["kv_cache_gib"] / target - 1
        assert off["kv_cache_gib"] - on["kv_cache_gib"] == pytest.approx(0.89 * off["cuda_graph_gib"], abs=0.011)
    worst = max(errors, key=lambda k: abs(errors[k]))
    assert abs(errors[worst]) < 0.03, (worst, errors[worst])


@pytest.mark.parametrize("row_id", ["N01", "168", "169", "183"])
def test_020_plus_rows_with_the_variable_off_keep_their_printed_estimate(row_id):
    """0.20+ starts that took a printed estimate from the budget, re-run with the variable off: the KV memory is the
    logged KV plus the printed estimate (within 3 %), and the estimator adds back exactly what it had taken."""
    rows = vvl.load_rows(vvl.CSV) + vvl.load_rows(vvl.CSV.parent / "vllm_logs_2026.csv")
    r = next(x for x in rows if x["row_id"] == row_id)
    case = vvl.make_case(r)
    on = vvl.predict(case)
    off = vvl.predict(dataclasses.replace(
        case, matrix=dataclasses.replace(case.matrix, memory_profiler_estimate_cudagraphs=False)))
    target = vvl._f(r["kv_cache_gib"]) + vvl._f(r["cuda_graph_estimated_gib"])
    assert off["kv_cache_gib"] == pytest.approx(target, rel=0.03)
    assert off["kv_cache_gib"] - on["kv_cache_gib"] == pytest.approx(0.89 * on["cuda_graph_gib"], abs=0.011)


def test_budget_graph_factor_follows_the_variable():
    p017, p020, p026 = (profile_for(v)[0] for v in ("0.19.1", "0.22", "0.27"))
    assert budget_graph_factor(p017, is_moe=False, hybrid=False) == 0.0
    # on in 0.18 / 0.19: the scale of the first profile that takes the estimate by default (0.20's, 0.89)
    assert budget_graph_factor(p017, False, False, estimate=True) == 0.89
    assert next(p for p in PROFILES if p.graphs_in_budget).name == "0.20"
    assert budget_graph_factor(p020, False, False, estimate=False) == 0.0
    assert budget_graph_factor(p020, False, False, estimate=True) == budget_graph_factor(p020, False, False) == 0.89
    # Model Runner V2 dense models estimate 0 before 0.29 whatever the variable says
    assert budget_graph_factor(p026, False, False, estimate=True) == 0.0
    assert budget_graph_factor(p026, True, False, estimate=True) == 1.64


def test_pasted_line_reads_the_variable_as_vllm_does():
    cmd = parse_vllm_command(f"{ENV}=0 vllm serve Qwen/Qwen3-30B-A3B --max-model-len 8192")
    assert cmd.engine["memory_profiler_estimate_cudagraphs"] is False
    cmd = parse_vllm_command(f"env {ENV}=1 vllm serve Qwen/Qwen3-30B-A3B")
    assert cmd.engine["memory_profiler_estimate_cudagraphs"] is True
    # vLLM: bool(int(os.getenv(...))) -- "true" stops vLLM at start-up
    with pytest.raises(VllmArgsError, match="bool\\(int"):
        parse_vllm_command(f"{ENV}=true vllm serve Qwen/Qwen3-30B-A3B")


def test_job_key_and_releases_without_the_variable():
    m = parse_matrix({"vllm_version": "0.27", "memory_profiler_estimate_cudagraphs": False})
    assert m.memory_profiler_estimate_cudagraphs is False and m.estimate_cudagraphs_used is False
    with pytest.raises(JobError, match="arrives in 0.18.0"):
        parse_matrix({"vllm_version": "0.17.1", "memory_profiler_estimate_cudagraphs": True})
    with pytest.raises(JobError, match="true or false"):
        parse_matrix({"vllm_version": "0.27", "memory_profiler_estimate_cudagraphs": 1})
    # 0.34's extensible KV cache measures the captured graphs: the variable decides nothing there ...
    assert Matrix(vllm_version="0.34", memory_profiler_estimate_cudagraphs=False).estimate_cudagraphs_used is None
    # ... unless the cache is sized the old way
    assert Matrix(vllm_version="0.34", memory_profiler_estimate_cudagraphs=False,
                  enable_extensible_kv_cache=False).estimate_cudagraphs_used is False


def _estimate(line: str, version: str) -> dict:
    return estimate_line(line, version)


MOE_LINE = "vllm serve Qwen/Qwen3-30B-A3B --max-model-len 8192"


def test_off_moves_the_graphs_outside_the_budget_and_can_fail_the_start():
    """0.27, MoE (Model Runner V1, estimate 1.64 x the captured graphs): off gives the estimate back to the KV cache,
    and at utilization 0.97 the graphs captured after the sizing no longer fit in the 3 % left -- vLLM's own warning
    ("Without it, CUDA graph memory is not accounted for during KV cache allocation, which may require lowering
    --gpu-memory-utilization to avoid OOM")."""
    on = _estimate(MOE_LINE + " --gpu-memory-utilization 0.97", "0.27")
    off = _estimate(f"{ENV}=0 " + MOE_LINE + " --gpu-memory-utilization 0.97", "0.27")
    assert off["kv_cache_gib"] - on["kv_cache_gib"] == pytest.approx(1.64 * on["cuda_graph_gib"], abs=0.01)
    assert on["status"] == "fits"
    assert off["status"] == "no_fit" and "graphs not reserved in the budget" in off["reason"]
    assert off["engine"]["memory_profiler_estimate_cudagraphs"] is False


def test_034_extensible_cache_ignores_it_the_old_sizing_does_not():
    base = _estimate(MOE_LINE, "0.34")
    off = _estimate(f"{ENV}=0 " + MOE_LINE, "0.34")
    assert off["kv_cache_gib"] == base["kv_cache_gib"]
    assert any("no effect" in n for n in off["vllm_args_notes"])
    old = _estimate(MOE_LINE + " --no-enable-extensible-kv-cache --gpu-memory-utilization 0.9", "0.34")
    old_off = _estimate(f"{ENV}=0 " + MOE_LINE + " --no-enable-extensible-kv-cache --gpu-memory-utilization 0.9",
                        "0.34")
    # 0.29+: the estimate is 1.48 x the MRV2 capture (profiles.py, rows 184 / 185)
    assert old_off["kv_cache_gib"] - old["kv_cache_gib"] == pytest.approx(1.48 * old["cuda_graph_gib"], abs=0.01)


def test_a_release_without_the_variable_ignores_it_with_a_note():
    plain = _estimate("vllm serve meta-llama/Llama-3.1-8B-Instruct --max-model-len 8192", "0.17")
    with_env = _estimate(f"{ENV}=1 vllm serve meta-llama/Llama-3.1-8B-Instruct --max-model-len 8192", "0.17")
    assert with_env["kv_cache_gib"] == plain["kv_cache_gib"]
    assert any("not read by vLLM 0.17" in n for n in with_env["vllm_args_notes"])
