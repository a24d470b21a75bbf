"""Shape a results table into what the HTML/PDF/XLSX templates show, one module per report section.

``build.py`` assembles the whole report context (its docstring says how matrices are keyed and
paged); ``matrices``, ``summary``, ``models`` and ``errors`` build one section each; ``axes`` decides
which columns key them; ``style`` and ``fmt`` hold the shared constants and formatters.
"""

from reportgen.outputs.report_data.build import build_report, estimate_pdf_pages
from reportgen.outputs.report_data.fmt import (fmt_bytes, fmt_conc, fmt_ctx, fmt_num, fmt_params, fmt_price,
                                               fmt_time, layout_label)
from reportgen.outputs.report_data.axes import split_axes
from reportgen.outputs.report_data.style import (BAR_TERMS, HTML_MATRIX_CELL_LIMIT, PDF_PAGE_BUDGET, STATUS_STYLE,
                                                 Cell)

__all__ = ["build_report", "estimate_pdf_pages", "fmt_bytes", "fmt_conc", "fmt_ctx", "fmt_num", "fmt_params",
           "fmt_price", "fmt_time", "layout_label", "split_axes", "BAR_TERMS", "HTML_MATRIX_CELL_LIMIT",
           "PDF_PAGE_BUDGET", "STATUS_STYLE", "Cell"]
