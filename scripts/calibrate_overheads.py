#!/usr/bin/env python
"""Fit the activation / non-torch / CUDA-graph model on real vLLM v0.19 start-up logs.

Why a script: the constants in ``reportgen/estimate/overheads.py`` must be
reproducible from the data, and re-fitted when rows are added.  This re-runs
the fit, prints every residual, and compares the fit with the constants the
estimator ships (exit 1 when they drifted by more than the tolerance).

Data: the v0.19 H100 full-breakdown rows of ``tests/data/vllm_logs.csv`` (a
copy of shared/reference/vllm_logs.csv); the PP rows' per-stage activation from
their notes.  Identical configurations (same model, layout and dtypes, only
``max_model_len`` differs) are counted once: the overheads do not depend on the
context length, and ten copies of Llama-3.1-8B should not outvote the others.
Model dimensions come from the configs through the same code the estimator uses
(proxies as in validate_vllm_logs.py).

Usage: python scripts/calibrate_overheads.py [--tolerance 0.15]
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from reportgen.estimate import overheads as oh  # noqa: E402
from reportgen.estimate.layout import Layout  # noqa: E402
from reportgen.estimate.tables import activation_coeffs, activation_gib, act_bytes_for, model_facts  # noqa: E402
from validate_vllm_logs import CSV, _f, load_rows, make_case  # noqa: E402

# MM_ENCODER is fitted on the multimodal rows of every version by scripts/calibrate_encoder.py
ACT_PARAMS = ("ALPHA_MLP", "BETA_HIDDEN", "HIDDEN_KEPT", "SAMPLER_BYTES", "MOE_WS")
BOUNDS = {"ALPHA_MLP": (0.0, 6.0), "BETA_HIDDEN": (0.0, 20.0), "HIDDEN_KEPT": (0.0, 8.0),
          "SAMPLER_BYTES": (4.0, 30.0), "MOE_WS": (0.0, 3.0)}


@dataclass
class Point:
    label: str
    facts: object
    layout: Layout
    act_b: int
    t: int
    r: int
    last: bool
    layers: int
    act: float | None
    nt: float | None
    graph: float | None


def points(csv: Path = CSV) -> list[Point]:
    pts: dict[tuple, Point] = {}
    for row in load_rows(csv):
        if not str(row.get("vllm_version") or "").startswith("0.19") or not (row.get("gpu") or "").startswith("H100"):
            continue
        case = make_case(row)
        # multimodal rows carry the encoder profile (its own term, fitted on them by calibrate_encoder.py given
        # these constants): in this fit they would steer the text terms by the encoder model's error
        if case is None or case.spec.multimodal:
            continue
        m = case.matrix
        lay = Layout(m.tp[0], m.pp[0], m.dp[0], m.ep[0])
        facts = model_facts(case.spec)
        act_b = act_bytes_for(case.weight_dtype, case.spec)
        t, s = m.max_num_batched_tokens or 8192, m.max_num_seqs or 1024
        key = (case.config_id, case.weight_dtype, lay)   # overheads do not depend on the KV dtype
        stage_acts = [(lay.pp == 1, _f(row.get("activation_peak_gib")))]
        if lay.pp > 1:   # notes: "PP0 ... act 1.10 ...; PP3 ... act 2.01": first and last stage
            acts = [float(x) for x in re.findall(r"act (\d+\.\d+)", row.get("notes") or "")]
            stage_acts = [(False, acts[0]), (True, acts[-1])] if len(acts) >= 2 else [(False, stage_acts[0][1])]
        n_layers = -(-case.spec.num_layers // lay.pp)
        for last, a in stage_acts:
            k = key + (last,)
            if k in pts:
                continue
            pts[k] = Point(f"{row['row_id']:>3} {case.model.split('/')[-1][:34]} tp{lay.tp} pp{lay.pp}"
                           f"{' last' if last and lay.pp > 1 else ''} {case.weight_dtype}",
                           facts, lay, act_b, t, min(s, t), last, n_layers, a,
                           _f(row.get("non_torch_gib")) if not (lay.pp > 1 and last) else None,
                           _f(row.get("cuda_graph_gib")) if not (lay.pp > 1 and last) else None)
    return list(pts.values())


def predict_act(p: dict, pt: Point) -> float:
    c = activation_coeffs(pt.facts, pt.layout, pt.act_b, SimpleNamespace(**p))
    return activation_gib(c, pt.t, pt.r, pt.last)


def fit_activation(pts: list[Point], sweeps: int = 12) -> dict:
    """Least squares by coordinate descent (the model has a max(), so no closed form)."""
    data = [pt for pt in pts if pt.act is not None]
    p = {k: getattr(oh, k) for k in ACT_PARAMS}

    def loss(q):
        return sum((predict_act(q, pt) - pt.act) ** 2 for pt in data)

    for _ in range(sweeps):
        for k in ACT_PARAMS:
            lo, hi = BOUNDS[k]
            for _ in range(40):   # golden-section search on one coordinate
                a = lo + (hi - lo) * 0.382
                b = lo + (hi - lo) * 0.618
                la, lb = loss({**p, k: a}), loss({**p, k: b})
                lo, hi = (lo, b) if la < lb else (a, hi)
            p[k] = round((lo + hi) / 2, 3)
    return p


def fit_non_torch(pts: list[Point]) -> dict:
    single = [pt.nt for pt in pts if pt.nt is not None and pt.layout.tp == 1 and pt.layout.pp == 1]
    pp_only = [pt.nt for pt in pts if pt.nt is not None and pt.layout.tp == 1 and pt.layout.pp > 1]
    comm = [(pt.layout.tp * (pt.layout.dp if pt.facts.is_moe else 1), pt.nt) for pt in pts
            if pt.nt is not None and pt.layout.tp > 1]
    x = np.array([[1.0, g] for g, _ in comm])
    y = np.array([v for _, v in comm])
    (base, per), *_ = np.linalg.lstsq(x, y, rcond=None)
    return {"NT_SINGLE": round(float(np.median(single)), 3), "NT_PP_ONLY": round(float(np.median(pp_only)), 3),
            "NT_COMM_BASE": round(float(base), 3), "NT_COMM_PER_RANK": round(float(per), 3)}


def fit_graphs(pts: list[Point]) -> dict:
    d = [pt for pt in pts if pt.graph is not None]
    x = np.array([[1.0, pt.layers, pt.layers * pt.facts.hidden / 4096 / pt.layout.tp, float(pt.facts.is_moe)]
                  for pt in d])
    y = np.array([pt.graph for pt in d])
    (g0, g1, g2, g3), *_ = np.linalg.lstsq(x, y, rcond=None)
    return {"G_BASE": round(float(g0), 3), "G_PER_LAYER": round(float(g1), 4),
            "G_PER_LAYER_WIDTH": round(float(g2), 4), "G_MOE": round(float(g3), 3)}


def residual_summary(pts: list[Point] | None = None) -> dict[str, tuple[int, float, float]]:
    """``{term: (n, RMS GiB, max |err| GiB)}`` with the shipped constants (for docs/accuracy.md)."""
    from reportgen.estimate.tables import graph_gib, non_torch_gib
    pts = points() if pts is None else pts
    sp = SimpleNamespace(**{k: getattr(oh, k) for k in ACT_PARAMS})
    res: dict[str, list[float]] = {"activation": [], "non-torch": [], "CUDA graph": []}
    for pt in pts:
        if pt.act is not None:
            res["activation"].append(activation_gib(activation_coeffs(pt.facts, pt.layout, pt.act_b, sp),
                                                    pt.t, pt.r, pt.last) - pt.act)
        if pt.nt is not None:
            res["non-torch"].append(non_torch_gib(pt.layout, pt.facts.is_moe) - pt.nt)
        if pt.graph is not None:
            res["CUDA graph"].append(graph_gib(pt.layers, pt.layout.tp, pt.facts.hidden, pt.facts.is_moe) - pt.graph)
    out = {}
    for k, v in res.items():
        a = np.array(v)
        out[k] = (len(a), float(np.sqrt((a ** 2).mean())), float(np.abs(a).max()))
    return out


def leave_one_model_out(pts: list[Point]) -> list[tuple[str, float, float]]:
    """Refit the activation without each model in turn and predict it: how the fit does on a
    model it has not seen (the hidden-model case)."""
    out = []
    models = sorted({pt.label.split()[1] for pt in pts})
    for m in models:
        train = [pt for pt in pts if pt.label.split()[1] != m]
        p = fit_activation(train, sweeps=6)
        for pt in pts:
            if pt.label.split()[1] == m and pt.act is not None:
                out.append((pt.label, pt.act, predict_act(p, pt)))
    return out


# ---- per version profile (reportgen/estimate/profiles.py) ----

def _ratio_rows(res: list[dict], lo: tuple[int, int], hi: tuple[int, int] | None) -> list[float]:
    """estimate / captured graph memory on rows of versions in [lo, hi) that print both."""
    from reportgen.estimate.profiles import parse_version
    out = []
    for r in res:
        v = parse_version(_version_text(r))
        if v is None or v < lo or (hi is not None and v >= hi):
            continue
        if r["g_est_meas"] and r["g_meas"] and r["g_meas"] > 0:
            out.append(r["g_est_meas"] / r["g_meas"])
    return out


def _version_text(r: dict) -> str:
    """The 0.x version a compared row was run under (``run_version``: a ROW_SETTINGS version wins over the logged
    text, as in the row's ``profile``), "" when none."""
    from validate_vllm_logs import version_of
    return r.get("run_version") or version_of(r["version"]) or ""


def graph_ratio_rows(csv: Path | None = None) -> list[tuple[str, str, float, float]]:
    """(row, version, estimate, captured) for every log row printing both graph figures, run or not
    (the ratio needs no model config).  The version is the logged one, not ``run_version``: the ratio is of
    the graph estimator of the code that ran (row 170: 0.20.2, run under the 0.21 profile for its token line)."""
    from validate_vllm_logs import load_rows, version_of
    out = []
    for r in load_rows(csv):
        e, g = _f(r.get("cuda_graph_estimated_gib")), _f(r.get("cuda_graph_gib"))
        if e and g and g > 0 and version_of(r.get("vllm_version")):
            out.append((r["row_id"], version_of(r.get("vllm_version")), e, g))
    return out


def fit_profiles(res: list[dict] | None = None) -> dict[str, dict]:
    """Re-fit each profile's numeric terms on the rows of its own range.

    - ``sampler_extra_bytes``: least squares of (measured - predicted activation) against
      sampler rows x vocab / GiB, on single-stage dense text-only rows, added to the shipped value;
    - ``nt_single``: median non-torch of one-GPU rows; ``nt_comm_base``: median of the TP/DP
      group rows on NVLink-SHARP machines (the term's own: GPUs without NVLS get ``nt_single``
      instead, overheads.comm_terms) minus ``nt_comm_per_rank`` x group (per-rank slope kept: no
      range has two group sizes);
    - ``graph_estimate_scale``: median estimate / captured graph memory of the rows that print
      both.  0.20 and 0.25 use the 0.19 rows (same estimator, PR #30515; 0.19 prints the estimate
      without subtracting it) and 0.20's own; 0.26+ their own rows.
    Returns ``{profile name: {field: (fitted, shipped, n rows)}}``; a field with no row of its
    range is left out (the profile keeps its inherited value)."""
    from reportgen.estimate import profiles as vp
    from validate_vllm_logs import run

    res = run() if res is None else res
    ratios = graph_ratio_rows()
    out: dict[str, dict] = {}
    for i, p in enumerate(vp.PROFILES):
        hi = vp.PROFILES[i + 1].first if i + 1 < len(vp.PROFILES) else None
        mine = [r for r in res if _version_text(r) and vp.profile_for(_version_text(r))[0] is p
                and not r["interference"] and r["started"]]
        fit: dict[str, tuple] = {}
        # dense text-only rows: there the sampler branch is the activation peak (MoE workspaces and
        # encoder profiling have terms of their own)
        # (not where the graph estimate is in the budget: 0.27+ logs fold it into "peak activation")
        d = [(r["act_meas"] - r["act_pred"], r["sampler_rows"] * r["vocab"] / oh.GIB) for r in mine
             if r["act_meas"] is not None and r["pp"] == 1 and not r["is_moe"] and not r["multimodal"]
             and not p.graphs_in_budget]
        if d:
            x = np.array([b for _, b in d]); y = np.array([a for a, _ in d])
            fit["sampler_extra_bytes"] = (round(p.sampler_extra_bytes + float((x * y).sum() / (x * x).sum()), 1),
                                          p.sampler_extra_bytes, len(d))
        one = [r["nt_meas"] for r in mine if r["nt_meas"] is not None and r["tp"] == 1 and r["pp"] == 1]
        if one:
            fit["nt_single"] = (round(float(np.median(one)), 3), p.nt_single, len(one))
        grp = [(r["tp"] * (r["dp"] if r["is_moe"] else 1), r["nt_meas"]) for r in mine
               if r["nt_meas"] is not None and r["tp"] > 1 and oh.comm_terms(r.get("interconnect"))[0]]
        if grp:
            base = float(np.median([v - p.nt_comm_per_rank * g for g, v in grp]))
            fit["nt_comm_base"] = (round(base, 3), p.nt_comm_base, len(grp))
        if p.graphs_in_budget:
            lo, top = (((0, 19), (0, 21)) if p.first < (0, 26) else (p.first, hi))
            rs = [e / g for _, v, e, g in ratios
                  if lo <= vp.parse_version(v) and (top is None or vp.parse_version(v) < top)]
            if rs:
                fit["graph_estimate_scale"] = (round(float(np.median(rs)), 2), p.graph_estimate_scale, len(rs))
        out[p.name] = fit
    return out


MIN_ROWS = 3   # fewer rows of a range than this: the term is reported, not fitted (value inherited)


def mrv2_graph_rows(res: list[dict] | None = None) -> list[tuple[str, float, float]]:
    """(row, captured graph memory logged, the Model Runner V1 graph model) of the started, scored rows whose model
    runs on Model Runner V2 and whose log prints the captured graph memory (> 0); one row per distinct start (row
    189 is row 33's log completed: same model, figures and KV)."""
    from validate_vllm_logs import run

    res = run() if res is None else res
    out, seen = [], set()
    for r in res:
        if not (r["mrv2"] and r["started"] and not r["interference"] and r["g_meas"] and r["g_meas"] > 0
                and r["g_pred"]):
            continue
        key = (r["model"], r["g_meas"], r["kv_meas"], r["tok_meas"])
        if key in seen:
            continue
        seen.add(key)
        out.append((str(r["row"]), r["g_meas"], r["g_pred"] / oh.MRV2_GRAPH_RATIO))
    return out


def fit_mrv2_graph_ratio(res: list[dict] | None = None) -> tuple[float, int]:
    """oh.MRV2_GRAPH_RATIO re-fitted: the median of logged / modelled (V1 form) graph memory over
    ``mrv2_graph_rows``; (ratio, rows)."""
    rows = mrv2_graph_rows(res)
    return (round(float(np.median([g / m for _, g, m in rows])), 2) if rows else float("nan")), len(rows)


def check_profiles(tolerance: float) -> int:
    from validate_vllm_logs import run

    res = run()
    fits = fit_profiles(res)
    drift = []
    ratio, n = fit_mrv2_graph_ratio(res)
    bad = abs(ratio - oh.MRV2_GRAPH_RATIO) > max(0.05, tolerance * oh.MRV2_GRAPH_RATIO)
    print("Model Runner V2 graph memory / the V1 graph model (overheads.MRV2_GRAPH_RATIO): fitted | shipped | rows")
    print(f"  {ratio:9.3f} {oh.MRV2_GRAPH_RATIO:9.3f} {n:4d}{'  <- drift' if bad else ''}")
    drift += ["overheads.MRV2_GRAPH_RATIO"] if bad else []
    print("per-profile terms: fitted on the profile's own rows | shipped in profiles.py | rows")
    for name, fit in fits.items():
        if not fit:
            print(f"  {name:5s} (no row of this range prints a fitted term: values inherited)")
        for k, (v, shipped, n) in fit.items():
            rel = abs(v - shipped) / max(abs(shipped), 1e-9)
            floor = 1.0 if k.endswith("_bytes") else 0.05     # bytes per logit / GiB or ratio
            bad = rel > tolerance and abs(v - shipped) > floor
            if n < MIN_ROWS:
                # too few rows to trust: reported, and only a drift when the profile claims a fit
                fitted_here = abs(v - shipped) <= floor or rel <= tolerance
                print(f"  {name:5s} {k:22s} {v:9.3f} {shipped:9.3f} {n:4d}  (< {MIN_ROWS} rows: "
                      f"{'shipped from these rows' if fitted_here else 'not fitted, value inherited'})")
                continue
            drift += [f"{name}.{k}"] if bad else []
            print(f"  {name:5s} {k:22s} {v:9.3f} {shipped:9.3f} {n:4d}{'  <- drift' if bad else ''}")
    if drift:
        print(f"\nprofiles.py differs from the fit: {', '.join(drift)}")
        return 1
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--tolerance", type=float, default=0.15,
                    help="relative drift between fit and shipped constants that fails the run")
    ap.add_argument("--loo", action="store_true", help="also run a leave-one-model-out check of the activation fit")
    ap.add_argument("--profiles", action="store_true",
                    help="re-fit each vLLM version profile's terms on its own rows (profiles.py)")
    a = ap.parse_args(argv)
    if a.profiles:
        return check_profiles(a.tolerance)
    pts = points()
    if a.loo:
        print("leave-one-model-out activation (GiB): measured, predicted by a fit without that model")
        errs = []
        for label, meas, pred in leave_one_model_out(pts):
            errs.append(pred - meas)
            print(f"  {label:60s} {meas:6.2f} {pred:6.2f} {pred - meas:+6.2f}")
        e = np.array(errs)
        print(f"  LOO RMS {np.sqrt((e ** 2).mean()):.3f} GiB, max |err| {np.abs(e).max():.3f} GiB\n")
    fit = {**fit_activation(pts), **fit_non_torch(pts), **fit_graphs(pts)}
    shipped = {k: getattr(oh, k) for k in fit}
    print(f"{len(pts)} distinct configurations (v0.19, H100)\n")
    print(f"{'constant':18s} {'fitted':>9s} {'shipped':>9s}")
    drift = []
    for k, v in fit.items():
        rel = abs(v - shipped[k]) / max(abs(shipped[k]), 1e-9)
        flag = "  <- drift" if rel > a.tolerance and abs(v - shipped[k]) > 0.02 else ""
        if flag:
            drift.append(k)
        print(f"{k:18s} {v:9.4f} {shipped[k]:9.4f}{flag}")
    sp = SimpleNamespace(**{k: getattr(oh, k) for k in ACT_PARAMS})
    print("\nresiduals with the shipped constants (GiB): activation | non-torch | CUDA graph")
    print(f"{'configuration':60s} {'act':>6s} {'pred':>6s} {'err':>6s} | {'nt':>5s} {'pred':>5s} | {'graph':>5s} {'pred':>5s}")
    from reportgen.estimate.tables import graph_gib, non_torch_gib
    res_a, res_n, res_g = [], [], []
    for pt in pts:
        pa = activation_gib(activation_coeffs(pt.facts, pt.layout, pt.act_b, sp), pt.t, pt.r, pt.last)
        pn = non_torch_gib(pt.layout, pt.facts.is_moe)
        pg = graph_gib(pt.layers, pt.layout.tp, pt.facts.hidden, pt.facts.is_moe)
        if pt.act is not None:
            res_a.append(pa - pt.act)
        if pt.nt is not None:
            res_n.append(pn - pt.nt)
        if pt.graph is not None:
            res_g.append(pg - pt.graph)
        print(f"{pt.label:60s} {pt.act or 0:6.2f} {pa:6.2f} {pa - (pt.act or 0):+6.2f} | "
              f"{pt.nt if pt.nt is not None else float('nan'):5.2f} {pn:5.2f} | "
              f"{pt.graph if pt.graph is not None else float('nan'):5.2f} {pg:5.2f}")
    for name, r in (("activation", res_a), ("non-torch", res_n), ("CUDA graph", res_g)):
        r = np.array(r)
        print(f"{name:11s} n={len(r):2d}  RMS {np.sqrt((r ** 2).mean()):.3f} GiB  max |err| {np.abs(r).max():.3f} GiB")
    if drift:
        print(f"\nshipped constants differ from the fit: {', '.join(drift)} -- update reportgen/estimate/overheads.py")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
