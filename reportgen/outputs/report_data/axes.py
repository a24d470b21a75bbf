"""Which columns key a matrix: layout axes, scenario axes, and the polars expressions that make a cell.

Why here: the matrices, the summary and the model sections all split a run by the same axes.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from reportgen.outputs.report_data.fmt import fmt_ctx
from reportgen.outputs.report_data.style import AXIS_LABEL, SCENARIO_AXES, STATUS_STYLE


def str_num(expr: pl.Expr, digits: int) -> pl.Expr:
    return expr.round(digits).cast(pl.String)


def _conc_expr(col: str = "max_concurrency") -> pl.Expr:
    c = pl.col(col)
    return (
        pl.when(c.is_null()).then(pl.lit(""))
        .when(c < 10).then(str_num(c, 1))
        .when(c < 10_000).then(c.round(0).cast(pl.Int64).cast(pl.String))
        .otherwise((c / 1000).round(0).cast(pl.Int64).cast(pl.String) + pl.lit("k"))
    )


def cell_exprs() -> list[pl.Expr]:
    """cls / sym / txt / head / tip for every row, vectorised."""
    st = pl.col("status")
    sym = st.replace_strict({k: v[0] for k, v in STATUS_STYLE.items()}, default="")
    show_conc = st.is_in(["fits", "tight"]) | ((st == "no_fit") & (pl.col("kv_cache_gib") > 0))
    head = pl.col("headroom_pct")
    gib = lambda c: pl.col(c).round(2).cast(pl.String).fill_null("—")  # noqa: E731
    memory = pl.concat_str(
        [
            pl.lit("\nweights "), gib("weights_gib"),
            pl.lit(" GiB\nactivation peak "), gib("activation_gib"),
            pl.lit(" GiB\nnon-torch "), gib("non_torch_gib"),
            pl.lit(" GiB\nCUDA graphs "), gib("cuda_graph_gib"),
            pl.lit(" GiB\nKV cache "), gib("kv_cache_gib"),
            pl.lit(" GiB (needed "), gib("kv_needed_gib"),
            pl.lit(" GiB)\nheadroom "), str_num(head, 1).fill_null("—"),
            pl.lit(" %\nKV tokens "), pl.col("kv_cache_tokens").cast(pl.String).fill_null("—"),
            pl.lit(" · max concurrency "), _conc_expr().replace("", "—"),
            pl.lit(" · worst rank "), pl.col("worst_rank").fill_null("—"),
        ]
    )
    has_memory = pl.col("weights_gib").is_not_null()
    tip = pl.concat_str(
        [
            pl.col("model"), pl.lit("\n"), pl.col("gpu_name").fill_null(pl.col("gpu")),
            pl.lit(" · "), pl.col("_layout"), pl.lit(" · "), pl.col("gpus").cast(pl.String),
            pl.lit(" GPU(s) · "), pl.col("weight_scheme").fill_null(pl.col("weights_as")),
            pl.lit("\nstatus: "), st,
            pl.when(pl.col("reason").fill_null("") != "")
            .then(pl.lit(" — ") + pl.col("reason")).otherwise(pl.lit("")),
            pl.when(has_memory).then(memory).otherwise(pl.lit("")),
            pl.when(pl.col("price_usd_hr").is_not_null())
            .then(pl.lit("\n$") + pl.col("price_usd_hr").round(2).cast(pl.String) + pl.lit(" per hour"))
            .otherwise(pl.lit("")),
        ]
    )
    return [
        (pl.lit("s-") + st).alias("_cls"),
        sym.alias("_sym"),
        pl.when(show_conc).then(_conc_expr()).otherwise(pl.lit("")).alias("_txt"),
        pl.when(head.is_not_null()).then(str_num(head, 0).str.replace(r"\.0$", "") + pl.lit("%"))
        .otherwise(pl.lit("")).alias("_head"),
        tip.alias("_tip"),
    ]


def layout_expr(show_dp: bool, show_ep: bool) -> pl.Expr:
    parts = [pl.lit("TP"), pl.col("tp").cast(pl.String), pl.lit("·PP"), pl.col("pp").cast(pl.String)]
    if show_dp:
        parts += [pl.lit("·DP"), pl.col("dp").cast(pl.String)]
    if show_ep:
        parts += [pl.when(pl.col("ep")).then(pl.lit("·EP")).otherwise(pl.lit(""))]
    return pl.concat_str(parts)


# --- the report --------------------------------------------------------------------------------

def ordered_unique(series: pl.Series) -> list:
    """Distinct non-null values in order of first appearance."""
    return series.drop_nulls().unique(maintain_order=True).to_list()


def varying_axes(df: pl.DataFrame, cols: tuple[str, ...]) -> list[str]:
    return [c for c in cols if c in df.columns and df[c].drop_nulls().n_unique() > 1]


def split_axes(df: pl.DataFrame) -> tuple[list[str], list[str]]:
    """(scenario axes, per-GPU settings) among SCENARIO_AXES that vary in ``df``.

    A setting that takes one value per GPU (vLLM's max_num_batched_tokens and
    max_num_seqs defaults depend on the device size) is a property of the GPU
    column, not a scenario: splitting matrices by it would give each matrix only
    some of the GPUs.  Those are shown beside the GPU instead.

    A setting that takes one value per model (a job ``models`` entry's own ``kv_cache_dtype``: DeepSeek-V4
    at fp8 beside the others at auto) is neither: a scenario split would leave each model in only some
    matrices, so it is left out (each model's section names the KV dtype it ran at, ``kv_cache_dtype_used``).
    """
    scenario, per_gpu = [], []
    for c in varying_axes(df, SCENARIO_AXES):
        within = df.filter(pl.col("gpu").is_not_null()).group_by("gpu").agg(pl.col(c).drop_nulls().n_unique())
        if within[c].max() <= 1:
            per_gpu.append(c)
        elif "model" in df.columns and df.group_by("model").agg(pl.col(c).drop_nulls().n_unique())[c].max() <= 1:
            continue
        else:
            scenario.append(c)
    return scenario, per_gpu


def scenario_label(key: dict[str, Any]) -> str:
    bits = []
    for k, v in key.items():
        if k == "max_model_len":
            bits.append(f"{fmt_ctx(v)} context")
        elif k == "weights_as":
            bits.append(f"{v} weights")
        else:
            bits.append(f"{AXIS_LABEL.get(k, k)} {v}")
    return " · ".join(bits)
