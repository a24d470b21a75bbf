"""report_data: what the templates are given — cheapest fit, matrix keys and paging, limits."""

from __future__ import annotations

import polars as pl
import pytest

from reportgen import results as R
from reportgen.outputs import report_data as RD
from test_report_synthetic import GPUS, MODELS, synthetic_errors, synthetic_meta, synthetic_results


@pytest.fixture(scope="module")
def res() -> pl.DataFrame:
    return synthetic_results()


def test_formatters():
    assert [RD.fmt_ctx(n) for n in (8192, 32768, 131072, 1 << 20, 1000, 128000, 24576)] == \
        ["8k", "32k", "128k", "1M", "1,000", "128,000", "24k"]
    assert RD.fmt_params(8_030_261_248) == "8.03 B" and RD.fmt_params(671_026_419_200) == "671 B"
    assert RD.fmt_bytes(131072) == "128 KiB" and RD.fmt_bytes(70272) == "68.62 KiB"
    assert [RD.fmt_conc(v) for v in (0.42, 9.96, 57.3, 12_345.0, None)] == ["0.4", "10.0", "57", "12k", "—"]
    assert RD.fmt_price(None) == "—" and RD.fmt_price(7.155) == "$7.16"
    assert RD.fmt_time("2026-11-26T02:00:00Z") == "2026-11-26 02:00 UTC"
    assert RD.layout_label(2, 1) == "TP2·PP1" and RD.layout_label(2, 2, 2, True) == "TP2·PP2·DP2·EP"


def test_cheapest_fit_matches_brute_force(res):
    report = RD.build_report(res, synthetic_errors(), synthetic_meta(res))
    got = {(r["model"], r["context_n"], r["axes"][0]): r for r in report["summary"]}
    assert len(got) == len(MODELS) * 3 * 2
    for (model, ctx, wd), row in got.items():
        cand = [r for r in res.iter_rows(named=True)
                if r["model"] == model and r["max_model_len"] == ctx and r["weights_as"] == wd
                and r["status"] in ("fits", "tight")]
        if not cand:
            assert not row["fit"] and row["why"]
            continue
        priced = [c for c in cand if c["price_usd_hr"] is not None]
        pool = priced or cand
        best = min(pool, key=lambda c: (c["price_usd_hr"] or 0, c["gpus"], -c["headroom_pct"]))
        assert row["fit"] and row["price_n"] == best["price_usd_hr"] and row["gpus"] == best["gpus"]
        assert row["headroom_n"] == best["headroom_pct"]


def test_summary_explains_unsupported(res):
    report = RD.build_report(res, None, None)
    nxt = [r for r in report["summary"] if r["model"].startswith("Qwen/Qwen3-Next")]
    assert nxt and all(r["status"] == "unsupported" and "linear attention" in r["why"] for r in nxt)


def test_matrices_one_per_context_and_dtype_in_order(res):
    report = RD.build_report(res, None, synthetic_meta(res))
    labels = [m["label"] for m in report["matrices"]]
    assert labels == [f"{c} context · {w} weights" for c in ("8k", "32k", "128k") for w in ("checkpoint", "fp8")]
    mx = report["matrices"][0]
    (part,) = mx["parts"]                               # HTML: one table per matrix
    assert [g[2] for g in part["gpus"]] == [g[0] for g in GPUS]
    assert [m["id"] for m, _ in part["rows"]] == [m[0] for m in MODELS]
    assert all(len(cells) == len(GPUS) * 8 for _, cells in part["rows"])
    # column order within a GPU: by GPU count, then fewer pipeline stages
    tp, pp = part["layout_rows"][0][1][:8], part["layout_rows"][1][1][:8]
    assert list(zip(tp, pp)) == [(1, 1), (2, 1), (1, 2), (4, 1), (2, 2), (8, 1), (4, 2), (8, 2)]
    # the first cell is Llama-8B on H100 TP1 PP1 at 8k: a fit whose text is its max concurrency
    cell = part["rows"][0][1][0]
    row = res.filter((pl.col("model") == MODELS[0][0]) & (pl.col("gpu") == "h100-sxm") & (pl.col("tp") == 1)
                     & (pl.col("pp") == 1) & (pl.col("max_model_len") == 8192)
                     & (pl.col("weights_as") == "checkpoint")).row(0, named=True)
    assert cell.cls == "s-fits" and cell.sym == "✓" and cell.txt == RD.fmt_conc(row["max_concurrency"])
    assert f"weights {round(row['weights_gib'], 2)} GiB" in cell.tip and "H100 SXM 80GB" in cell.tip
    # invalid layouts carry their reason in the tooltip
    rtx = [c for c in part["rows"][0][1][24:] if c.cls == "s-invalid_layout"]
    assert rtx and all("exceeds 1 node x 4 GPUs" in c.tip for c in rtx)


def test_pdf_parts_hold_whole_gpus_within_width():
    res = synthetic_results(n_models=3, n_gpus=8, contexts=(8192,), weight_dtypes=("checkpoint",))
    report = RD.build_report(res, None, None, medium="pdf", max_columns=16)
    (mx,) = report["matrices"]
    assert len(mx["parts"]) == 4
    seen = []
    for p in mx["parts"]:
        assert len(p["col_gpus"]) <= 16 and all(span == 8 for _, span, _ in p["gpus"])
        assert all(len(cells) == len(p["col_gpus"]) for _, cells in p["rows"])
        seen += p["col_gpus"]
    assert len(seen) == 64 and len(set(seen)) == 8
    # a GPU wider than a page is split on its own
    narrow = RD.build_report(res, None, None, medium="pdf", max_columns=5)["matrices"][0]["parts"]
    assert all(len(p["col_gpus"]) <= 5 for p in narrow) and sum(len(p["col_gpus"]) for p in narrow) == 64


def test_other_scenario_axes_split_matrices():
    res = synthetic_results(n_models=2, n_gpus=1, contexts=(8192,), weight_dtypes=("bf16",))
    both = pl.concat([res, res.with_columns(kv_cache_dtype=pl.lit("fp8"))])
    report = RD.build_report(both, None, None)
    assert [m["label"] for m in report["matrices"]] == ["8k context · bf16 weights · KV dtype auto",
                                                        "8k context · bf16 weights · KV dtype fp8"]


def test_concurrency_targets_fold_into_one_matrix():
    res = synthetic_results(n_models=2, n_gpus=1, contexts=(131072,), weight_dtypes=("bf16",), concurrency=(1, 64))
    report = RD.build_report(res, None, None)
    (mx,) = report["matrices"]
    assert mx["label"] == "128k context · bf16 weights" and report["concurrency_targets"] == [1, 64]
    cells = mx["parts"][0]["rows"][0][1]                 # Llama-8B on H100, 8 layouts
    at64 = (res.filter((pl.col("model") == MODELS[0][0]) & (pl.col("concurrency") == 64))
            .sort("gpus", "pp")["status"].to_list())
    assert [c.cls for c in cells] == [f"s-{s}" for s in at64]          # coloured at the largest target
    assert "s-no_fit" in {c.cls for c in cells}                         # ... which some layouts miss
    assert all("concurrency 1: " in c.tip and "concurrency 64: " in c.tip for c in cells)
    # the summary still answers each target separately
    assert {r["axes"][-1] for r in report["summary"]} == {1, 64}


def test_matrix_limit_leaves_matrices_out_and_says_so(monkeypatch, res):
    monkeypatch.setattr(RD.style, "HTML_MATRIX_CELL_LIMIT", 100)
    report = RD.build_report(res, None, {"skipped_outputs": [{"output": "results.xlsx", "reason": "too big"}]})
    assert report["matrices"] == []
    assert any("exceed its limit of 100" in n for n in report["notes"])
    assert len(report["summary"]) == len(MODELS) * 6
    assert any(n.startswith("results.xlsx was not written: too big") for n in report["notes"])
    assert len(report["models"]) == len(MODELS)           # the rest of the report is still there


def test_model_bars_pick_fewest_gpus_that_fit(res):
    report = RD.build_report(res, None, synthetic_meta(res))
    llama70 = next(m for m in report["models"] if m["id"] == "meta-llama/Meta-Llama-3.1-70B")
    h100 = next(b for b in llama70["bars"] if b["gpu_id"] == "h100-sxm")
    fitting = res.filter((pl.col("model") == llama70["id"]) & (pl.col("gpu") == "h100-sxm")
                         & (pl.col("max_model_len") == 8192) & (pl.col("weights_as") == "checkpoint")
                         & pl.col("status").is_in(["fits", "tight"]))
    assert h100["gpus"] == fitting["gpus"].min() and h100["status"] in ("fits", "tight")
    assert abs(sum(s["pct"] for s in h100["segments"]) - 100) < 1e-6     # bar covers the GPU exactly
    rtx = next(b for b in llama70["bars"] if b["gpu_id"] == "rtx4090")
    assert rtx["status"] == "no_fit" and rtx["overflow"] and "exceed the budget" in rtx["reason"]
    unsup = next(m for m in report["models"] if m["id"].startswith("Qwen/Qwen3-Next"))
    assert all(not b["segments"] and b["status"] == "unsupported" for b in unsup["bars"])


def test_errors_and_cell_errors(res):
    report = RD.build_report(res, synthetic_errors(), None)
    assert [e["kind"] for e in report["errors"]] == ["not_found", "gated", "malformed_config"]
    (ce,) = report["cell_errors"]
    assert ce["model"] == "deepseek-ai/DeepSeek-V3" and ce["cells"] == res.filter(pl.col("status") == "error").height


def test_empty_results_render_data():
    report = RD.build_report(R.empty_results(), None, {"job_name": "empty"})
    assert report["matrices"] == [] and report["summary"] == [] and report["n_cells"] == 0


def test_pdf_leaves_matrices_out_above_its_page_budget():
    big = synthetic_results(n_models=100, n_gpus=8)
    report = RD.build_report(big, None, None, medium="pdf")
    assert report["matrices"] == [] and "over the budget of 80 pages" in report["notes"][0]
    assert RD.build_report(big, None, None, medium="html")["matrices"]          # the HTML keeps them
    # the default job's shape (16 models x 8 GPUs x 8 layouts x 2 dtypes x 3 contexts; targets fold) keeps them
    assert RD.estimate_pdf_pages(16 * 8 * 8 * 2 * 3, 16, 16, 8) <= RD.PDF_PAGE_BUDGET
    default = synthetic_results(n_models=16, n_gpus=8, concurrency=(1, 32))
    assert len(RD.build_report(default, None, None, medium="pdf")["matrices"]) == 6


def test_per_gpu_engine_defaults_do_not_split_matrices():
    """vLLM's batching defaults depend on the GPU size: a GPU property, not a scenario."""
    res = synthetic_results(n_models=2, n_gpus=4, contexts=(8192,), weight_dtypes=("bf16",))
    small = pl.col("gpu_memory_gib") < 70
    res = res.with_columns(max_num_seqs=pl.when(small).then(256).otherwise(1024).cast(pl.Int64),
                           max_num_batched_tokens=pl.when(small).then(2048).otherwise(8192).cast(pl.Int64))
    report = RD.build_report(res, None, None)
    assert [m["label"] for m in report["matrices"]] == ["8k context · bf16 weights"]
    assert report["gpu_settings"] == ["batched tokens", "max seqs"]
    assert {g["id"]: g["settings"] for g in report["gpus"]}["l40s"] == [2048, 256]
    assert all(len(r["axes"]) == 1 for r in report["summary"])           # no per-GPU columns in the summary
