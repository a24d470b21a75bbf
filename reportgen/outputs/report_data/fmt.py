"""Number and label formatters the sections and the templates share (one rounding rule for every format)."""

from __future__ import annotations

import math
from datetime import datetime


def fmt_ctx(n: int | None) -> str:
    """8192 -> '8k', 131072 -> '128k', 1_048_576 -> '1M'; other values as digits.

    'k' is 1024 tokens, as people say "128k context" for 131072; a decimal value
    such as 128000 would read as "125k", so it is shown in digits instead.
    """
    if n is None:
        return "—"
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20}M"
    kib = n >> 10
    if n >= 1024 and n % 1024 == 0 and (kib & (kib - 1) == 0 or kib % 8 == 0):
        return f"{kib}k"
    return f"{n:,}"


def fmt_params(n: int | float | None) -> str:
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return "—"
    for div, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            v = n / div
            return f"{v:.3g} {unit}" if v < 100 else f"{v:.0f} {unit}"
    return str(int(n))


def fmt_bytes(n: float | None) -> str:
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return "—"
    for div, unit in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= div:
            return f"{n / div:.4g} {unit}"
    return f"{n:.0f} B"


def fmt_num(v: float | None, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{v:,.{digits}f}"


def fmt_conc(v: float | None) -> str:
    """Max concurrency: one decimal below 10, integers above, 'k' from 10 000."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if v < 10:
        return f"{v:.1f}"
    if v < 10_000:
        return f"{v:.0f}"
    return f"{v / 1000:.0f}k"


def fmt_price(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"${v:,.2f}"


def fmt_time(iso: str | None) -> str:
    """'2026-11-26T02:00:00Z' -> '2026-11-26 02:00 UTC' (the input as-is when not ISO)."""
    if not iso:
        return "—"
    try:
        t = datetime.fromisoformat(str(iso).replace("Z", "+00:00"))
    except ValueError:
        return str(iso)
    return t.strftime("%Y-%m-%d %H:%M UTC")


def layout_label(tp: int, pp: int, dp: int = 1, ep: bool = False) -> str:
    parts = [f"TP{tp}", f"PP{pp}"]
    if dp and dp > 1:
        parts.append(f"DP{dp}")
    if ep:
        parts.append("EP")
    return "·".join(parts)


# --- expressions -------------------------------------------------------------------------------
