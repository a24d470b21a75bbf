"""vLLM version profiles (reportgen/estimate/profiles.py): version mapping, capture-size counts
from the logs, what each profile takes from the budget, and each profile against its own logged
start-ups (tests/data/vllm_logs*.csv)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from reportgen.estimate import overheads as oh
from reportgen.estimate.profiles import (DEFAULT_PROFILE, PROFILES, budget_graph_factor, capture_sizes,
                                         parse_version, profile_for)
from reportgen.job import DEFAULT_VLLM_VERSION, JobError, parse_vllm_version
from reportgen.matrix import estimate_one
from test_estimate_specs import dense_spec, moe_spec

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))

import calibrate_overheads  # noqa: E402
import validate_vllm_logs  # noqa: E402

H100 = 79.19


@pytest.mark.parametrize("version, profile", [
    ("0.10.1.dev101+gbda9d0535", "0.10"),       # row F02
    ("0.11.0", "0.11"), ("0.11", "0.11"),       # 0.11.0: the step-8 capture list (branch patchver)
    ("0.11.1", "0.11.1"), ("0.11.2", "0.11.1"),
    ("0.13.0+faa43dbf.nv26.01", "0.11.1"),      # NGC build, row M06
    ("0.16.1rc1.dev265+gd106bf39f", "0.11.1"),  # row M01
    ("0.17", "0.17"), ("0.19.0", "0.17"), ("v0.19.1", "0.17"),
    # 0.20.0 / 0.20.2 logs already take the graph estimate from the budget (profiles.py docstring); from 0.20.1 the
    # "GPU KV cache size" line is concurrency x length (branch patchver)
    ("0.20", "0.20"), ("v0.20.0", "0.20"), ("0.20.1rc1.dev91+ga749a33d8", "0.20.1"), ("0.20.1.dev1", "0.20.1"),
    ("v0.20.2", "0.20.1"), ("0.21.0", "0.20.1"), ("v0.21.1rc1", "0.20.1"), ("0.24", "0.20.1"),
    ("0.25.1", "0.25"), ("0.26.0", "0.26"), ("0.27.1", "0.26"), ("0.28.0", "0.26"),
    ("0.29", "0.29"), ("0.31.0", "0.29"),
])
def test_versions_map_to_the_profile_of_their_range(version, profile):
    p, note = profile_for(version)
    assert p.name == profile and note == ""


def test_a_future_version_uses_the_newest_profile_with_a_note():
    p, note = profile_for("0.40.0")
    assert p is DEFAULT_PROFILE is PROFILES[-1]
    assert "newer than the newest release read" in note and p.label in note
    assert profile_for(DEFAULT_VLLM_VERSION) == (DEFAULT_PROFILE, "")    # the default is the newest


def test_job_versions_are_normalised_and_old_ones_refused():
    assert parse_vllm_version("v0.27.1") == "0.27.1"
    assert parse_vllm_version("0.27") == "0.27"                 # major.minor kept as written: the .0 release
    assert parse_vllm_version("0.40") == "0.40"                # accepted; the note comes with the profile
    with pytest.raises(JobError, match="from 0.10 on"):
        parse_vllm_version("0.9.2")


@pytest.mark.parametrize("max_num_seqs, piecewise, full", [
    (256, 51, 35),     # LMCache#3430: "PIECEWISE=51 (largest=512), FULL=35 (largest=256)"
    (128, 35, 19),     # MiniMax-M3 log: "PIECEWISE=35 (largest=256), FULL=19 (largest=128)"
    (1024, 51, 51),    # the 0.19 fit: "PIECEWISE=51 (largest=512), FULL=51"
])
def test_capture_sizes_follow_max_num_seqs_as_the_logs_print_them(max_num_seqs, piecewise, full):
    p = profile_for("0.27")[0]
    assert capture_sizes(p, max_num_seqs, 8192) == piecewise + full
    assert capture_sizes(p, max_num_seqs, 8192, enforce_eager=True) == 0
    # 0.10: [1, 2, 4] + range(8, min(2 x max_num_seqs, 512) + 1, 8) -- vllm 0.10.0 sdist, config.py:2451-2456 /
    # :4760-4777: 67 sizes from max_num_seqs 256 up, 35 at 128 (branch versionaudit; 67 whatever before)
    assert capture_sizes(profile_for("0.10")[0], max_num_seqs, 8192) == (67 if max_num_seqs >= 256 else 35)


def test_graph_memory_scales_with_the_number_of_captures():
    full = estimate_one(dense_spec(), H100, vllm_version="0.19", max_num_seqs=1024)
    few = estimate_one(dense_spec(), H100, vllm_version="0.19", max_num_seqs=128)
    per_layer = full["cuda_graph_gib"] - oh.G_BASE
    assert few["cuda_graph_gib"] == pytest.approx(oh.G_BASE + per_layer * (35 + 19) / 102)


def test_what_each_profile_takes_from_the_budget_for_dense_and_moe():
    dense = {p.name: budget_graph_factor(p, is_moe=False, hybrid=False) for p in PROFILES}
    moe = {p.name: budget_graph_factor(p, is_moe=True, hybrid=False) for p in PROFILES}
    hyb = {p.name: budget_graph_factor(p, is_moe=False, hybrid=True) for p in PROFILES}
    # 0.29+: Model Runner V2 for every model kind (PRs #53306 / #53183); its estimate measures the PIECEWISE
    # graphs and extrapolates the FULL ones from the two largest (vllm 0.29.0 sdist, v1/worker/gpu/cudagraph_utils.py
    # :718-832), which over-counts the pool they share: rows 184 / 185 print 0.38 estimated for 0.23 / 0.29 captured,
    # median 1.48 -- of MRV2's capture (overheads.MRV2_GRAPH_RATIO x the graph model), for every model kind
    # 0.34: the extensible KV cache measures the captured graphs (no estimate: exprs.gpu_pass); without it, 0.29's
    assert dense == {"0.10": 0, "0.11": 0, "0.11.1": 0, "0.17": 0, "0.20": 0.89, "0.20.1": 0.89, "0.25": 0, "0.26": 0,
                     "0.29": 1.48, "0.34": 1.48}
    assert moe == {"0.10": 0, "0.11": 0, "0.11.1": 0, "0.17": 0, "0.20": 0.89, "0.20.1": 0.89, "0.25": 0.89, "0.26": 1.64,
                   "0.29": 1.48, "0.34": 1.48}
    assert hyb == {**moe, "0.25": 0.89}


def test_kv_budget_across_versions_for_one_dense_8b_on_h100():
    r = {v: estimate_one(dense_spec(), H100, vllm_version=v, gpu_memory_utilization=0.95)
         for v in ("0.11", "0.19", "0.21", "0.27", "0.31")}
    g = r["0.19"]["cuda_graph_gib"]
    # 0.11-0.16: the profile-run sampler holds 23.6 more bytes per logit (1024 rows x 128256 vocab)
    assert r["0.11"]["activation_gib"] - r["0.19"]["activation_gib"] == pytest.approx(
        1024 * 128256 * 23.6 / 2**30, rel=1e-6)
    assert r["0.21"]["kv_cache_gib"] == pytest.approx(r["0.19"]["kv_cache_gib"] - 0.89 * g)
    # 0.25.1+: a dense model runs on Model Runner V2, whose profile-run sampler keeps one fp32 copy of the
    # bf16 logits (sampler.py @0120ce5a): 1024 x 128256 x 6 B + 8192 x 1.974 x 4096 x 2 B = 0.857 GiB, below
    # the forward 8192 x 2 x (1.591 x 28672 + 4.088 x 4096) B = 0.952 GiB -- the MRV1 form gave 1.87 GiB
    fwd = 8192 * 2 * (oh.ALPHA_MLP * 2 * 14336 + oh.BETA_HIDDEN * 4096) / 2**30
    smp2 = (1024 * 128256 * 6 + 8192 * oh.HIDDEN_KEPT * 4096 * 2) / 2**30
    smp1 = (1024 * 128256 * (2 + oh.SAMPLER_BYTES) + 8192 * oh.HIDDEN_KEPT * 4096 * 2) / 2**30
    assert smp2 < fwd < smp1
    assert r["0.19"]["activation_gib"] == pytest.approx(smp1, rel=1e-4)
    assert r["0.27"]["activation_gib"] == pytest.approx(fwd, rel=1e-4)
    assert r["0.27"]["kv_cache_gib"] == pytest.approx(r["0.19"]["kv_cache_gib"] + smp1 - fwd, abs=1e-3)  # no estimate
    nt = profile_for("0.31")[0].nt_single - profile_for("0.19")[0].nt_single       # 0.26 vs 0.25 (row 33)
    # 0.29+: the MRV2 estimate, 1.48 x MRV2's capture, itself 0.37 x the (MRV1-fitted) graph model; MRV2 sampler too
    assert r["0.31"]["cuda_graph_gib"] == pytest.approx(oh.MRV2_GRAPH_RATIO * g)
    assert r["0.27"]["cuda_graph_gib"] == pytest.approx(oh.MRV2_GRAPH_RATIO * g)     # dense MRV2 already (outside)
    assert r["0.31"]["kv_cache_gib"] == pytest.approx(
        r["0.19"]["kv_cache_gib"] + smp1 - fwd - 1.48 * 0.37 * g - nt, abs=1e-3)
    assert r["0.27"]["vllm_version"] == "0.27"


def test_moe_keeps_its_graph_estimate_on_0_27():
    a = estimate_one(moe_spec(), H100, vllm_version="0.19", gpu_memory_utilization=0.95)
    b = estimate_one(moe_spec(), H100, vllm_version="0.27", gpu_memory_utilization=0.95)
    # 0.21+ also loads under max_split_size_mb=20: the weights' unsplit allocator blocks (weights.allocator_unsplit_bytes)
    dw = b["weights_gib"] - a["weights_gib"]
    assert 0 < dw < 0.01
    assert b["kv_cache_gib"] == pytest.approx(a["kv_cache_gib"] - 1.64 * a["cuda_graph_gib"] - dw)


@pytest.fixture(scope="module")
def logged():
    return {r["row"]: r for r in validate_vllm_logs.run()}


@pytest.mark.parametrize("rows, profile", [
    ((75, 76, 77, 78, 79, 80, "C05", "C06", "C07", "C08", "C09"), "0.11.0"),
    ((81, 82), "0.11.1-0.16"),
    ((68,), "0.26-0.28"),
    # the 0.29 rows whose logs print the KV memory, since the MRV2 graph fit (branch mrv2graphs): 185 was -17.8 %
    ((33, 161, 162, 163, 185), "0.29-0.33"),
])
def test_each_profile_meets_the_targets_on_its_own_rows(logged, rows, profile):
    for row in rows:
        r = logged[row]
        assert r["profile"] == profile, row
        assert abs(r["w_err"] or 0) <= 1 or abs(r["w_abs"]) <= 0.05, row
        if r["tok_err"] is not None:
            assert abs(r["tok_err"]) <= 5, (row, r["tok_err"])
        assert abs(r["kv_err"]) <= 5, (row, r["kv_err"])
        assert r["status"] in ("fits", "tight"), row


def test_the_0_11_activation_holds_the_heavier_sampler(logged):
    # Llama-3.1-8B 4.76 GiB at 0.11 vs 1.89 at 0.19; Qwen3-14B 5.64 at 0.15/0.16 vs 2.23 at 0.17/0.18
    assert logged[76]["act_pred"] == pytest.approx(4.76, abs=0.35)
    assert logged[81]["act_pred"] == pytest.approx(5.64, abs=0.4)
    assert logged[83]["act_pred"] == pytest.approx(2.23, abs=0.05)


def test_the_0_11_sampler_without_sort_when_flashinfer_samples(logged):
    # vLLM 0.10-0.16 TopKTopPSampler: with FlashInfer installed and VLLM_USE_FLASHINFER_SAMPLER unset
    # ("in V1, None means True") it samples with FlashInfer -- no sort, so no sampler_extra_bytes.
    # Row 80 (Mistral-Small-3.2, 0.11) logs 2.12 GiB of activation: the no-sort sampler's.
    from reportgen.job import parse_matrix
    # (abs 0.2: the sort-based sampler would add ~2.9 GiB; the encoder term's refit on branch towerpeak, MM_ENCODER
    # 1.201 -> 0.318, left this row 0.15 GiB under its log)
    assert logged[80]["act_pred"] == pytest.approx(2.12, abs=0.2)
    assert abs(logged[80]["tok_err"]) < 1
    spec = dense_spec()
    native = estimate_one(spec, H100, vllm_version="0.11")
    fi = estimate_one(spec, H100, vllm_version="0.11", flashinfer_sampler=True)
    extra = PROFILES[1].sampler_extra_bytes * 1024 * spec.vocab_size / 2**30
    assert native["activation_gib"] - fi["activation_gib"] == pytest.approx(extra, rel=0.02)
    assert fi["kv_cache_gib"] == pytest.approx(native["kv_cache_gib"] + extra, rel=0.01)
    # 0.17+ samples with Triton top-k/top-p (no sort): the setting changes nothing there
    a = estimate_one(spec, H100, vllm_version="0.19")
    b = estimate_one(spec, H100, vllm_version="0.19", flashinfer_sampler=True)
    assert a["activation_gib"] == b["activation_gib"]
    assert parse_matrix({"flashinfer_sampler": True}).flashinfer_sampler is True
    with pytest.raises(JobError):
        parse_matrix({"flashinfer_sampler": "yes"})
    from reportgen.vllm_args import VllmArgsError, parse_vllm_command
    assert parse_vllm_command("VLLM_USE_FLASHINFER_SAMPLER=1 vllm serve m").engine["flashinfer_sampler"] is True
    assert parse_vllm_command("VLLM_USE_FLASHINFER_SAMPLER=0 vllm serve m").engine["flashinfer_sampler"] is False
    with pytest.raises(VllmArgsError, match="bool\\(int"):      # vLLM's envs.py: bool(int(value))
        parse_vllm_command("VLLM_USE_FLASHINFER_SAMPLER=true vllm serve m")


def test_profile_constants_match_their_fit(capsys):
    assert calibrate_overheads.check_profiles(0.15) == 0
    out = capsys.readouterr().out
    assert "0.11  sampler_extra_bytes" in out and "0.20  graph_estimate_scale" in out


def test_model_runner_v2_graph_ratio_rows(logged):
    """MRV2's captured graph memory over the graph model fitted on Model Runner V1 captures: the five distinct started
    rows that log it (189 is row 33's log; N05's 0.00 under WSL2 and the cold-compile N06 are not used), their
    logged figures as the logs print them, and the shipped ratio their median; the 0.29 estimate scale is the
    median estimate / captured of the 0.29+ rows printing both (184: 0.38 / 0.23, 185: 0.38 / 0.29)."""
    rows = {r: (g, m) for r, g, m in calibrate_overheads.mrv2_graph_rows(list(logged.values()))}
    assert sorted(rows) == ["184", "185", "33", "35", "N04"]
    assert {r: g for r, (g, _) in rows.items()} == {"33": 0.23, "184": 0.23, "185": 0.29, "35": 0.37, "N04": 0.40}
    ratios = sorted(round(g / m, 2) for g, m in rows.values())
    assert ratios == [0.29, 0.29, 0.37, 0.62, 0.67]
    assert oh.MRV2_GRAPH_RATIO == ratios[2] == calibrate_overheads.fit_mrv2_graph_ratio(list(logged.values()))[0]
    est = sorted(e / g for _, v, e, g in calibrate_overheads.graph_ratio_rows()
                 if parse_version(v) >= (0, 29, 0))
    assert [round(x, 2) for x in est] == [1.31, 1.65]
    assert profile_for("0.29")[0].graph_estimate_scale == round((est[0] + est[1]) / 2, 2) == 1.48


def test_graph_estimate_ratio_rows_are_read_from_both_files():
    rows = {r[0]: r for r in calibrate_overheads.graph_ratio_rows()}
    assert rows["P01"][2:] == (1.94, 0.94) and rows["34"][2:] == (4.99, 4.13)
    assert sum(1 for r in rows.values() if r[1].startswith("0.19")) >= 30


def test_estimate_names_the_profile_and_notes_a_future_version():
    import contextlib
    import io
    import json

    from reportgen.cli import main

    path = str(Path(__file__).resolve().parents[1] / "reportgen" / "sources" / "bundled"
               / "meta-llama--Meta-Llama-3.1-8B.json")

    def run(*args):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            main(["estimate", path, "--gpu", "H100", "--json", "--offline", *args])
        return json.loads(out.getvalue())

    old, now, future = run("--vllm-version", "v0.19.0"), run("--vllm-version", "0.27.1"), \
        run("--vllm-version", "0.40")
    assert old["vllm_profile"] == "0.17-0.19" and "vllm_profile_note" not in old
    assert now["vllm_profile"] == "0.26-0.28" and now["vllm_version"] == "0.27.1"
    assert future["vllm_profile"] == "0.34+" and "newer than the newest release read" in future["vllm_profile_note"]
    assert run()["vllm_profile"] == "0.34+"                        # default: the newest


def test_hybrid_state_kinds_decide_the_gdn_transient():
    # issue #50780: from 0.26 the graph estimate of Gated-DeltaNet hybrids holds the FLA chunk-scan
    # transient (tests/test_hybrid_logs.py checks its size); Mamba hybrids and plain models do not
    from types import SimpleNamespace as NS

    from reportgen.estimate.tables import state_kinds

    gdn = NS(layers_kv=[NS(state=NS(kind="gdn")), NS(state=None)])
    mamba = NS(layers_kv=[NS(state=NS(kind="mamba2")), NS(state=None)])
    assert state_kinds(gdn) == (True, True) and state_kinds(mamba) == (True, False)
    assert state_kinds(dense_spec()) == (False, False)
    assert profile_for("0.26")[0].gdn_transient_scale == profile_for("0.29")[0].gdn_transient_scale > 1
    assert profile_for("0.25")[0].gdn_transient_scale == 0
    assert budget_graph_factor(profile_for("0.27")[0], is_moe=False, hybrid=True) == 1.64


def test_model_runner_v2_samples_the_profile_run_with_one_fp32_copy(logged):
    """Model Runner V2 (dense models 0.25.1-0.28, every model 0.29+) runs ``_dummy_sampler_run`` through its
    own sampler: vLLM vllm/v1/worker/gpu/sample/sampler.py @0120ce5a ``Sampler.sample`` copies the
    model-dtype logits to one fp32 tensor and, for the dummy batch, skips top-k/top-p; gumbel.py @03f97cce
    keeps only r x V/1024 block maxima.  4 bytes per logit beyond the bf16 logits, not MRV1's fitted 12.3."""
    from reportgen.estimate.profiles import runs_mrv2
    from reportgen.estimate.tables import activation_coeffs, model_facts
    from reportgen.estimate.layout import Layout
    p19, p26, p29 = profile_for("0.19.0")[0], profile_for("0.27.1")[0], profile_for("0.29.0")[0]
    assert not runs_mrv2(p19, False, False)
    assert runs_mrv2(p26, False, False) and not runs_mrv2(p26, True, False) and not runs_mrv2(p26, False, True)
    assert runs_mrv2(p29, True, False) and runs_mrv2(p29, False, True)
    f = model_facts(dense_spec())                  # Llama-3.1-8B: vocab 128256
    v2 = activation_coeffs(f, Layout(1, 1, 1, False), 2.0, mrv2=True)["a_smp_r"]
    v1 = activation_coeffs(f, Layout(1, 1, 1, False), 2.0)["a_smp_r"]
    assert v2 == 128256 * (2 + 4) and v1 == pytest.approx(128256 * (2 + oh.SAMPLER_BYTES))
    # the rows that print MRV2's peak activation: row 35 (Qwen2.5-0.5B, 0.27.1, 2048 x 256: sampler-bound,
    # 256 x 151936 x 6 B + 2048 x 1.974 x 896 x 2 B = 0.224 GiB; logged 0.25, the MRV1 form gave 0.52) and
    # N05 (T = 8192: forward-bound 0.29; logged 0.31, MRV1 form 0.55)
    assert logged[35]["act_pred"] == pytest.approx((256 * 151936 * 6 + 2048 * oh.HIDDEN_KEPT * 896 * 2) / 2**30,
                                                   abs=0.003)
    for row in (35, "N05"):
        assert abs(logged[row]["act_pred"] - logged[row]["act_meas"]) < 0.04, row
    # N08 (Qwen3-32B TP 2 on PCIe RTX PRO 6000, 8192 / 1024): 1.02 GiB, inside the 1.33 the log leaves
    assert logged["N08"]["act_pred"] == pytest.approx(1.02, abs=0.01)
    assert abs(logged["N08"]["tok_err"]) < 5
    # MoE on 0.27.1 stays on MRV1 (row 150: 32 sequences, activation 0.75 vs 0.76 logged)
    assert logged[150]["act_pred"] == pytest.approx(0.76, abs=0.03)
