"""Per-model sections: facts, parameter breakdown and one memory bar per GPU."""

from __future__ import annotations

import polars as pl

from reportgen.outputs.report_data.axes import ordered_unique
from reportgen.outputs.report_data.fmt import fmt_bytes, fmt_conc, fmt_ctx, fmt_num, fmt_params, layout_label
from reportgen.outputs.report_data.style import BAR_TERMS, STATUS_STYLE


def model_sections(res: pl.DataFrame, models: list[dict], gpus: list[dict], scen_axes: list[str]) -> list[dict]:
    """Per model: its facts and one memory bar per GPU.

    The bar shows the reference scenario (smallest context, first weight dtype,
    largest concurrency target, first value of every other axis) on the layout a planner would pick: the
    fitting layout with the fewest GPUs (then most headroom); if none fits, the
    largest layout tried (the closest to fitting); otherwise the status alone.
    Beside it: the fewest GPUs that fit at each context.
    """
    sections = []
    # rows of models that never reached the matrix have no layout or context: nothing to draw
    res = res.filter(pl.col("weights_as").is_not_null() & pl.col("max_model_len").is_not_null())
    if not res.height:
        return [{**m, "params_total_h": fmt_params(m.get("params_total")),
                 "params_active_h": fmt_params(m.get("params_active")), "moe": False,
                 "kv_per_token_h": kv_per_token_h(m),
                 "architecture": _architecture(m), "components": _components(m),
                 "sections": _sections(m), **_notes(m), "error": m.get("error"),
                 "bars": [], "ref_label": "", "weight_schemes": [], "kv_dtypes_used": []}
                for m in models]
    def first(a: str):
        if a == "weights_as":
            return ordered_unique(res[a])[0]
        vals = res[a].drop_nulls().sort()
        return vals[-1] if a == "concurrency" else vals[0]      # the largest target, as in the matrices

    ref = res
    for a in scen_axes[1:]:
        if res[a].drop_nulls().len():
            ref = ref.filter(pl.col(a) == first(a))
    ref_ctx = res["max_model_len"].min()
    ref_label = f"{fmt_ctx(ref_ctx)} context, {first('weights_as')} weights"
    if res["concurrency"].drop_nulls().len():
        ref_label += f", concurrency {first('concurrency')}"
    at_ref = ref.filter(pl.col("max_model_len") == ref_ctx)
    rank = (pl.when(pl.col("status").is_in(["fits", "tight"])).then(0)
            .when(pl.col("status") == "no_fit").then(1).otherwise(2))
    pick = (at_ref.with_columns(rank.alias("_rank"),
                                pl.when(pl.col("status").is_in(["fits", "tight"])).then(pl.col("gpus"))
                                .otherwise(-pl.col("gpus")).alias("_g"))
            .sort(["_rank", "_g", "headroom_pct"], descending=[False, False, True], nulls_last=True)
            .group_by(["model", "gpu"], maintain_order=True).first())
    picked = {(r["model"], r["gpu"]): r for r in pick.iter_rows(named=True)}
    smallest = (ref.filter(pl.col("status").is_in(["fits", "tight"]))
                .group_by(["model", "gpu", "max_model_len"]).agg(pl.col("gpus").min()))
    fewest: dict[tuple[str, str], dict[int, int]] = {}
    for m, g, ctx, n in smallest.iter_rows():
        fewest.setdefault((m, g), {})[ctx] = n
    contexts = sorted(res["max_model_len"].drop_nulls().unique().to_list())
    # what each weight-axis value costed for each model: "as shipped" names the checkpoint's scheme
    schemes: dict[str, list[str]] = {}
    for mid, wd, sch in (res.filter(pl.col("weight_scheme").is_not_null())
                         .select("model", "weights_as", "weight_scheme").unique(maintain_order=True).iter_rows()):
        label = f"as shipped: {sch}" if wd in ("checkpoint", "auto") else f"{wd} (what-if): {sch}"
        schemes.setdefault(mid, []).append(label)
    # the KV dtype each kv-axis value really allocated ("auto" resolved; fp8 on DSA = fp8_ds_mla)
    kv_used: dict[str, list[str]] = {}
    if "kv_cache_dtype_used" in res.columns:
        for mid, kd, used in (res.filter(pl.col("kv_cache_dtype_used").is_not_null())
                              .select("model", "kv_cache_dtype", "kv_cache_dtype_used")
                              .unique(maintain_order=True).iter_rows()):
            kv_used.setdefault(mid, []).append(used if kd == used else f"{kd} → {used}")

    for m in models:
        bars = []
        for g in gpus:
            r = picked.get((m["id"], g["id"]))
            if r is None:
                continue
            fit_by_ctx = [(fmt_ctx(c), fewest.get((m["id"], g["id"]), {}).get(c)) for c in contexts]
            bars.append(_bar(r, g, fit_by_ctx))
        sections.append({
            **m,
            "params_total_h": fmt_params(m.get("params_total")),
            "params_active_h": fmt_params(m.get("params_active")),
            "moe": bool(m.get("params_active") and m.get("params_total")
                        and m["params_active"] < m["params_total"]),
            # unknown is not zero: an unsupported model's KV size is not known
            "kv_per_token_h": kv_per_token_h(m),
            "architecture": _architecture(m),
            "components": _components(m),
            "sections": _sections(m),
            **_notes(m),
            "error": m.get("error"),
            "bars": bars,
            "ref_label": ref_label,
            "weight_schemes": schemes.get(m["id"], []),
            "kv_dtypes_used": kv_used.get(m["id"], []),
        })
    return sections


def _notes(m: dict) -> dict:
    """The model's notes for every model (``notes``); ``vision_notes`` keeps the name templates written before
    text-only models had notes used (the same list, multimodal models only)."""
    notes = list(m.get("notes") or [])
    return {"notes": notes, "vision_notes": notes if m.get("multimodal") else []}


def _architecture(m: dict) -> str | None:
    """One line a reader can check against the model card, from the pipeline's model facts."""
    if m.get("architecture"):
        return str(m["architecture"])
    bits = []
    if m.get("num_layers"):
        bits.append(f"{m['num_layers']} layers")
    if m.get("hidden_size"):
        bits.append(f"hidden {m['hidden_size']:,}")
    heads, kv = m.get("num_attention_heads"), m.get("num_kv_heads")
    if heads:
        if m.get("is_mla"):
            bits.append(f"{heads} heads, MLA (latent KV)")
        elif kv:
            kind = "MHA" if kv == heads else "MQA" if kv == 1 else "GQA"
            bits.append(f"{heads} heads / {kv} KV heads ({kind})")
        else:
            bits.append(f"{heads} heads")
    if m.get("num_experts"):
        bits.append(f"{m['num_experts']} experts, {m.get('experts_per_token') or '?'} active")
    if m.get("vocab_size"):
        bits.append(f"vocab {m['vocab_size']:,}")
    if m.get("dtype"):
        bits.append(str(m["dtype"]))
    if m.get("multimodal"):
        bits.append("multimodal")
    return " · ".join(bits) or None


def _components(m: dict) -> list[tuple[str, str]]:
    comps = m.get("components")
    if not isinstance(comps, dict):
        return []
    return [(str(k).replace("_", " "), fmt_params(v)) for k, v in comps.items() if v]


def _sections(m: dict) -> list[tuple[str, str, str]]:
    """Multimodal models: (section, parameters, as-shipped bytes) for the text stack, tower, projector."""
    secs = m.get("sections")
    if not isinstance(secs, dict):
        return []
    return [(name, fmt_params(v.get("params")), fmt_bytes(v.get("bytes")))
            for name, v in secs.items() if isinstance(v, dict) and v.get("params")]


def _bar(r: dict, gpu: dict, fit_by_ctx: list) -> dict:
    """Bar segments as % of the GPU's usable memory (or of the total when it overflows)."""
    mem = r["gpu_memory_gib"] or gpu.get("usable_memory_gib") or 0.0
    status = r["status"]
    segments = []
    state_gib = state_share_gib(r)
    if r["weights_gib"] is not None and mem:
        terms = [(label, cls, max(float(r[col] or 0.0), 0.0)) for col, label, cls in BAR_TERMS]
        if state_gib:
            # the KV pool split: recurrent states of the target concurrency, the rest for KV tokens
            label, cls, kv = terms[-1]
            terms[-1:] = [(f"recurrent state ({r['concurrency']} sequences)", "s", min(state_gib, kv)),
                          (label, cls, max(kv - state_gib, 0.0))]
        util = r["gpu_memory_utilization"] or 0.0
        used = sum(t[2] for t in terms)
        reserved = max(mem - max(used, mem * util), 0.0)
        scale = max(mem, used)
        left = 0.0
        for label, cls, v in [*terms, (f"outside the budget (1 − util {util:g})", "r", reserved)]:
            if v > 0:
                pct = 100 * v / scale
                segments.append({"cls": cls, "label": label, "gib": v, "pct": pct, "left": left})
                left += pct
        overflow = used > mem * util + 1e-9
        need = sum(t[2] for t in terms[:4]) + float(r["kv_needed_gib"] or 0.0)
        need_pct = min(100 * need / scale, 100) if r["kv_needed_gib"] is not None else None
        limit_pct = 100 * mem * util / scale
    else:
        overflow, need_pct, limit_pct = False, None, None
    return {
        "gpu": gpu.get("name") or gpu["id"],
        "gpu_id": gpu["id"],
        "mem": mem,
        "layout": layout_label(r["tp"], r["pp"], r["dp"] or 1, bool(r["ep"])),
        "gpus": r["gpus"],
        "status": status,
        "sym": STATUS_STYLE.get(status, ("", status, ""))[0],
        "status_label": STATUS_STYLE.get(status, ("", status, ""))[1],
        "reason": r["reason"] or "",
        "headroom": fmt_num(r["headroom_pct"], 1),
        "max_concurrency": fmt_conc(r["max_concurrency"]),
        "segments": segments,
        "overflow": overflow,
        "need_pct": need_pct,
        "limit_pct": limit_pct,
        "fit_by_ctx": fit_by_ctx,
        "state_gib": state_gib,
        "state_per_seq": fmt_bytes(r.get("state_bytes_per_seq") or None),
        "block_size": r.get("block_size"),
        "limited_by": LIMITED_BY.get(r.get("concurrency_limited_by") or "", ""),
    }


def kv_per_token_h(m: dict) -> str:
    """The model's KV bytes per token for the card: unknown (None) is not zero, and an exact 0 is an
    attention-free model (mamba, mamba2: a recurrent state per sequence, no KV tokens)."""
    kv = m.get("kv_bytes_per_token")
    if kv is not None and kv == 0:
        return "none (attention-free: a recurrent state per sequence)"
    return fmt_bytes(kv or None)


LIMITED_BY = {"kv_tokens": "KV tokens", "state_slots": "state slots", "max_num_seqs": "max_num_seqs"}


def state_share_gib(r: dict) -> float:
    """GiB of the KV pool the target concurrency's recurrent states take (hybrids; 0 otherwise):
    ``concurrency x state_bytes_per_seq`` (pages as vLLM allocates them), at most the pool."""
    per_seq = r.get("state_bytes_per_seq") or 0.0
    conc = r.get("concurrency") or 0
    if not per_seq or not conc or r.get("kv_cache_gib") is None:
        return 0.0
    return min(per_seq * conc / 2**30, max(float(r["kv_cache_gib"]), 0.0))
