"""report.pdf: the same templates as the HTML, laid out by WeasyPrint for print.

Why WeasyPrint and not a browser: it is a pure Python dependency with real
paged-media CSS (repeated table headers, margin boxes with page counters and
the run title, ``break-inside: avoid`` rows).  The template is rendered with
``medium="pdf"`` so the fit matrices come split into tables of whole GPUs that
fit the page width instead of being shrunk.

Security: the document and any user template are untrusted as far as fetching
goes.  ``TemplateDirFetcher`` only serves files inside the template
directories (and inline ``data:`` URIs); http(s), ftp and files elsewhere on
disk are refused, so rendering never touches the network.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import polars as pl

from reportgen.outputs.html import render_report, template_dirs, write_atomic

PAPERS = {"A4": "A4 landscape", "Letter": "letter landscape"}
# columns of GPU × layout per matrix table; 16 = two GPUs of 8 layouts, legible on both papers
MAX_COLUMNS = {"A4": 16, "Letter": 16}


def _weasyprint():
    """Import WeasyPrint lazily: it costs ~1 s and only the PDF path needs it."""
    import weasyprint
    from weasyprint.urls import URLFetcher, URLFetcherResponse
    return weasyprint, URLFetcher, URLFetcherResponse


def make_fetcher(allowed_dirs: list[Path]):
    """A WeasyPrint URL fetcher serving only files inside ``allowed_dirs`` and data: URIs."""
    _, URLFetcher, URLFetcherResponse = _weasyprint()
    roots = [Path(d).resolve() for d in allowed_dirs]

    class TemplateDirFetcher(URLFetcher):
        """Refuses every URL that is not a file under one of the template directories."""

        refused: list[str]

        def __init__(self):
            super().__init__(allowed_protocols=("file", "data"), allow_redirects=False)
            self.refused = []

        def fetch(self, url, headers=None):
            scheme = urlparse(url).scheme.lower()
            if scheme == "data":
                return super().fetch(url, headers)
            if scheme == "file":
                # resolve() follows symlinks and "..", so a link out of the directory is refused too
                path = Path(url2pathname(urlparse(url).path)).resolve()
                if any(path.is_relative_to(r) for r in roots) and path.is_file():
                    from reportgen.safe_read import read_bytes_capped
                    from reportgen.usererrors import InputFileError

                    try:   # regular files only, size-capped (a template dir could hold a FIFO or a huge file)
                        return URLFetcherResponse(url, body=read_bytes_capped(path, "template resource", 16 << 20))
                    except InputFileError:
                        pass
            self.refused.append(url)
            raise ValueError(f"reportgen refuses to fetch {url!r}: only files in the template directory")

    return TemplateDirFetcher()


def render_pdf(
    results: pl.DataFrame,
    errors: pl.DataFrame | None,
    meta: dict | None,
    template_dir: Path | str | None = None,
    paper: str = "A4",
    fetcher=None,
) -> bytes:
    """The report as PDF bytes (landscape ``paper``: "A4" or "Letter")."""
    if paper not in PAPERS:
        raise ValueError(f"paper must be one of {', '.join(PAPERS)}, not {paper!r}")
    weasyprint, _, _ = _weasyprint()
    dirs = template_dirs(template_dir)
    html = render_report(results, errors, meta, template_dir, medium="pdf", max_columns=MAX_COLUMNS[paper])
    fetcher = fetcher or make_fetcher(dirs)
    page = weasyprint.CSS(string=f"@page {{ size: {PAPERS[paper]} !important; }}", url_fetcher=fetcher)
    # WeasyPrint logs every refused fetch as a warning; keep them out of the user's console
    log = logging.getLogger("weasyprint")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        doc = weasyprint.HTML(string=html, base_url=dirs[0].as_uri() + "/", url_fetcher=fetcher)
        pdf = doc.write_pdf(stylesheets=[page])
    finally:
        log.setLevel(level)
    if getattr(fetcher, "refused", None):
        logging.getLogger("reportgen").warning(
            "report.pdf: refused to fetch %d resource(s) outside the template directory: %s",
            len(fetcher.refused), ", ".join(sorted(set(fetcher.refused))[:5]))
    return pdf


def write_pdf(
    path: Path | str,
    results: pl.DataFrame,
    errors: pl.DataFrame | None,
    meta: dict | None,
    template_dir: Path | str | None = None,
    paper: str = "A4",
) -> Path:
    """Render and write report.pdf; returns the path."""
    return write_atomic(path, render_pdf(results, errors, meta, template_dir, paper))
