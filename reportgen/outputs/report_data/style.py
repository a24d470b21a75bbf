"""What a report shows for each status, term and axis, and the page and cell budgets.

One place for the constants every report section reads, so the HTML, PDF and XLSX agree.
"""

from __future__ import annotations

from typing import NamedTuple
from reportgen import results as R


# Above these sizes the matrices are left out (the summary, model sections and
# errors remain) and the report says so: a browser page or a PDF of that size is
# not something a reader can use, and rendering it would blow the time targets
# (HTML 2 s, PDF 30 s for 100 models).  The CSV/XLSX/Parquet keep every cell.
HTML_MATRIX_CELL_LIMIT = 300_000
# WeasyPrint lays out ~3 pages/s on the 2-core target, so the PDF is budgeted in pages
# (30 s target ≈ 90 pages; 80 keeps a margin).  Page costs measured on our own output
# (A4 landscape): ~290 matrix cells, ~7 cheapest-fit table rows (12 columns), ~0.08
# page per model × GPU memory bar.  The default job (20 models) estimates 45 pages and
# renders 45.
PDF_PAGE_BUDGET = 80
PDF_CELLS_PER_PAGE = 290
PDF_SUMMARY_ROWS_PER_PAGE = 7
PDF_PAGES_PER_BAR = 0.08
SUMMARY_MAX_COLUMNS = 12            # context × scenario columns per cheapest-fit table in the PDF

# status -> (symbol, label, legend text); the symbol makes cells readable in greyscale.
STATUS_STYLE: dict[str, tuple[str, str, str]] = {
    "fits": ("✓", "fits", f"fits, with at least {R.TIGHT_HEADROOM_PCT:g} % of the KV budget to spare"),
    "tight": ("◐", "tight", f"fits, but with less than {R.TIGHT_HEADROOM_PCT:g} % headroom"),
    "no_fit": ("✗", "no fit", "does not fit: weights, activations or the KV cache for the target exceed memory"),
    "invalid_layout": ("⊘", "invalid layout", "the layout breaks a validity rule (heads % tp, GPUs per node, ...)"),
    "unsupported": ("?", "unsupported", "an architecture feature the estimator does not model"),
    "error": ("!", "error", "the estimator failed on this cell"),
}
MISSING_CELL = ("s-none", "", "", "", "not evaluated in this run")

LAYOUT_AXES = ("tp", "pp", "dp", "ep")
# axes that split matrices when they take more than one value (context and weight dtype always do)
SCENARIO_AXES = ("kv_cache_dtype", "concurrency", "gpu_memory_utilization",
                 "max_num_batched_tokens", "max_num_seqs", "vllm_version")
AXIS_LABEL = {
    "max_model_len": "context", "weights_as": "weights", "kv_cache_dtype": "KV dtype",
    "concurrency": "concurrency", "gpu_memory_utilization": "util",
    "max_num_batched_tokens": "batched tokens", "max_num_seqs": "max seqs", "vllm_version": "vLLM",
    "tp": "TP", "pp": "PP", "dp": "DP", "ep": "EP",
}
BAR_TERMS = (
    ("weights_gib", "weights", "w"),
    ("activation_gib", "activation peak", "a"),
    ("non_torch_gib", "non-torch", "n"),
    ("cuda_graph_gib", "CUDA graphs", "g"),
    ("kv_cache_gib", "KV cache", "k"),
)


# the keys the templates read from meta["models"] / meta["gpus"] entries (missing ones become None)
MODEL_KEYS = ("model_type", "params_total", "params_active", "kv_bytes_per_token", "config_source",
              "revision", "unsupported_reason", "architecture")
GPU_KEYS = ("name", "usable_memory_gib", "price_usd_hr", "gpus_per_node", "platform_note")


class Cell(NamedTuple):
    """One matrix cell as the template needs it (pre-formatted, pre-escaped by Jinja)."""

    cls: str      # CSS class: s-<status>
    sym: str      # status symbol (greyscale legend)
    txt: str      # max concurrency
    head: str     # headroom %
    tip: str      # tooltip: memory breakdown and reason


# --- small formatters (used in templates through the context too) -----------------------------


# --- bounds on what one report shows (issue 14) ---------------------------------------------
# Ids and texts from users and remote configs can be any length; WeasyPrint's line breaking is
# superlinear in an unbreakable word (a 10,000-char id made a 2-model PDF take 13 minutes), so
# reports show at most MAX_ID_CHARS of an id (prefix + "…" + hash of the full id, unique per id);
# results.csv / results.parquet / errors.csv keep every id whole.
MAX_ID_CHARS = 80
MAX_TEXT_CHARS = 600                 # error messages and reasons shown in a report
# The PDF page budget covers the errors table and the model sections too: at most this many
# error rows (~25 a page) and sections of models that failed outright; the rest are counted
# in a note that points to errors.csv and the HTML report (which lists them all).
PDF_ERROR_ROWS = 60
PDF_FAILED_SECTIONS = 20
