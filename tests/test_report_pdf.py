"""report.pdf: text content, paging (headers repeated, no blank page, page numbers), paper, fetch policy."""

from __future__ import annotations

import http.server
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from reportgen.outputs import pdf as P
from test_report_synthetic import (GPUS, HOSTILE_ID, MODELS, synthetic_errors, synthetic_meta,
                                   synthetic_results)

pytest.importorskip("weasyprint")
needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None or shutil.which("pdfinfo") is None,
                                   reason="poppler-utils not installed")


def pages_text(path: Path) -> list[str]:
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    pages = out.split("\f")
    return pages[:-1] if pages and not pages[-1].strip() else pages


def page_size_pt(path: Path) -> tuple[float, float]:
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    w, h = re.search(r"Page size:\s+([\d.]+) x ([\d.]+) pts", info).groups()
    return float(w), float(h)


@pytest.fixture(scope="module")
def a4(tmp_path_factory):
    res = synthetic_results()
    meta = synthetic_meta(res)
    path = P.write_pdf(tmp_path_factory.mktemp("pdf") / "report.pdf", res, synthetic_errors(), meta)
    return path, meta


@pytest.fixture(scope="module")
def letter_long(tmp_path_factory):
    """Enough models that one matrix table runs over several pages."""
    res = synthetic_results(n_models=40, n_gpus=2, contexts=(32768,), weight_dtypes=("bf16",))
    meta = synthetic_meta(res) | {"job_name": "letter-run"}
    path = P.write_pdf(tmp_path_factory.mktemp("pdf") / "report.pdf", res, None, meta, paper="Letter")
    return path, meta


@needs_poppler
def test_a4_landscape_with_every_model_and_gpu(a4):
    path, meta = a4
    w, h = page_size_pt(path)
    assert (round(w), round(h)) == (842, 595)
    text = "\n".join(pages_text(path))
    flat = re.sub(r"\s+", "", text)
    for mid, *_ in MODELS:
        assert re.sub(r"\s+", "", mid) in flat, mid        # ids may wrap inside a narrow cell
    for _, name, *_ in GPUS:
        assert name in text
    assert HOSTILE_ID in text                               # shown as text, not interpreted


@needs_poppler
def test_title_block_and_margins(a4):
    path, meta = a4
    pages = pages_text(path)
    first = pages[0]
    for s in (meta["job_name"], "2026-11-26 02:00 UTC", "0.1.0", "2026.11", "3f9a0c1d2e4b5a67",
              "gpu_memory_utilization", "max_num_seqs"):
        assert s in first, s
    for i, page in enumerate(pages, 1):
        assert f"Page {i} of {len(pages)}" in page
        assert meta["job_name"] in page                     # run title in the margin of every page


MARGIN = re.compile(r"Page \d+ of \d+|reportgen fit report|\S+ · \d{4}-\d\d-\d\d \d\d:\d\d UTC")


@needs_poppler
@pytest.mark.parametrize("which", ["a4", "letter_long"])
def test_no_blank_page(which, request):
    path, _ = request.getfixturevalue(which)
    for i, page in enumerate(pages_text(path), 1):
        body = MARGIN.sub("", page).strip()
        assert len(body) > 40, f"page {i} is (nearly) blank: {page!r}"


def _matrix_pages(pages: list[str]) -> list[str]:
    # the running header names the section; matrix pages say "Fit matrices"
    return [p for p in pages if p.lstrip().startswith("Fit matrices")]


@needs_poppler
@pytest.mark.parametrize("which", ["a4", "letter_long"])
def test_every_matrix_page_has_its_header_rows(which, request):
    path, _ = request.getfixturevalue(which)
    mpages = _matrix_pages(pages_text(path))
    assert mpages
    for page in mpages:
        assert re.search(r"\bModel\b", page)
        assert re.search(r"^\s*TP(\s+\d+){2,}", page, re.M) and re.search(r"^\s*PP(\s+\d+){2,}", page, re.M)
        assert any(name in page for _, name, *_ in GPUS)
        assert re.search(r"\d+k context · \w+ weights", page)      # caption row repeats too


@needs_poppler
def test_letter_and_long_tables_repeat_headers(letter_long):
    path, _ = letter_long
    w, h = page_size_pt(path)
    assert (round(w), round(h)) == (792, 612)
    mpages = _matrix_pages(pages_text(path))
    assert len(mpages) >= 2                                 # the 40-row table runs over pages
    rows = sum(len(re.findall(r"variant-\d+", p)) for p in mpages)
    assert rows >= 40 - len(MODELS)                          # and no row went missing


def test_bad_paper_is_refused():
    with pytest.raises(ValueError, match="A4, Letter"):
        P.render_pdf(synthetic_results(n_models=1, n_gpus=1), None, None, paper="A3")


# --- fetch policy ----------------------------------------------------------------------------

def test_fetcher_serves_template_files_only(tmp_path):
    (tmp_path / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    outside = tmp_path.parent / "secret.txt"
    outside.write_text("secret")
    f = P.make_fetcher([tmp_path])
    assert f.fetch((tmp_path / "logo.svg").as_uri()).read().startswith(b"<svg")
    assert f.fetch("data:text/plain,hi").read() == b"hi"
    for url in ("http://127.0.0.1:9/x.png", "https://example.com/a.css", outside.as_uri(),
                (tmp_path / ".." / "secret.txt").as_uri(), "ftp://example.com/x"):
        with pytest.raises(ValueError):
            f.fetch(url)
    assert len(f.refused) == 5


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802
        _Recorder.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_user_template_cannot_make_the_pdf_fetch_http(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        from PIL import Image
        Image.new("RGB", (4, 4), "navy").save(tmp_path / "logo.png")
        (tmp_path / "_errors.html.j2").write_text(
            f'<section id="errors"><h2>Errors</h2><img src="http://127.0.0.1:{port}/probe.png">'
            f'<link rel="stylesheet" href="http://127.0.0.1:{port}/evil.css">'
            f'<img src="logo.png" alt="house logo"></section>')
        res = synthetic_results(n_models=1, n_gpus=1, contexts=(8192,), weight_dtypes=("bf16",))
        fetcher = P.make_fetcher([tmp_path, *P.template_dirs()[1:]])
        pdf = P.render_pdf(res, None, None, template_dir=tmp_path, fetcher=fetcher)
    finally:
        server.shutdown()
    assert _Recorder.hits == []
    assert any(u.startswith(f"http://127.0.0.1:{port}/") for u in fetcher.refused)
    assert b"/Image" in pdf                                  # the template's own file was allowed


@needs_poppler
def test_run_where_every_model_failed_still_renders(tmp_path):
    from reportgen import results as R
    from test_report_synthetic import synthetic_errors

    path = P.write_pdf(tmp_path / "report.pdf", R.empty_results(), synthetic_errors(), {"job_name": "all-failed"})
    text = "\n".join(pages_text(path))
    assert "all-failed" in text and "gated repository: set HF_TOKEN with access" in text
    assert "No cells were evaluated in this run." in text


def test_fetcher_refuses_symlink_out_of_the_template_dir(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    tdir = tmp_path / "templates"
    tdir.mkdir()
    (tdir / "link.txt").symlink_to(secret)
    (tdir / "my logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    f = P.make_fetcher([tdir])
    with pytest.raises(ValueError):
        f.fetch((tdir / "link.txt").as_uri())
    assert f.fetch((tdir / "my logo.svg").as_uri()).read().startswith(b"<svg")     # %20 decoded once
