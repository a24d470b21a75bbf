"""report.html: content, escaping, self-containment, template override, and a real browser load."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile

import pytest

from reportgen.outputs import html as H
from test_report_synthetic import GPUS, HOSTILE_ID, MODELS, synthetic_errors, synthetic_meta, synthetic_results

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def data():
    res = synthetic_results()
    return res, synthetic_errors(), synthetic_meta(res)


@pytest.fixture(scope="module")
def page(data) -> str:
    return H.render_html(*data)


def test_bundled_templates_found():
    d = H.bundled_template_dir()
    assert (d / "report.html.j2").is_file() and (d / "report.css").is_file()


def test_title_block_shows_run_facts_and_assumptions(page, data):
    meta = data[2]
    for text in (meta["job_name"], "2026-11-26 02:00 UTC", meta["tool_version"], meta["catalog_version"],
                 meta["inputs_hash"], "gpu_memory_utilization", "0.92", "max_num_batched_tokens", "8192",
                 "max_num_seqs", "1024", "kv_cache_dtype", "8k, 32k, 128k"):
        assert text in page.replace("<wbr>", ""), text        # keys carry <wbr> after "_" (break points)
    assert re.search(r"<dt>vLLM profile</dt><dd>0\.21</dd>", page)


def test_every_model_and_gpu_is_shown(page):
    for mid, *_ in MODELS:
        if mid != HOSTILE_ID:
            assert f'data-model="{mid}"' in page and f">{mid}</h3>" in page
    for _, name, *_ in GPUS:
        assert name in page


def test_hostile_model_id_is_text_not_markup(page):
    assert HOSTILE_ID not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<script") == 1                   # only the report's own inline script
    assert "&#34;http://evil.example/&#34;" in page or "&quot;http://evil.example/&quot;" in page


def test_self_contained_no_external_fetches(page):
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page, re.I)
    assert "@import" not in page and not re.search(r"url\(\s*['\"]?(https?:)?//", page)
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


def test_summary_matrix_and_errors_sections(page):
    assert page.count('<section class="mx"') == 6
    assert page.count('<table class="matrix">') == 6
    # the tooltip carries the breakdown and the reason of an invalid layout
    assert "exceeds 1 node x 4 GPUs" in page and "weights 14.96 GiB" in page
    # every legend entry, with its greyscale symbol
    for sym, label in (("✓", "fits"), ("◐", "tight"), ("✗", "no fit"), ("⊘", "invalid layout"),
                       ("?", "unsupported"), ("!", "error")):
        assert re.search(rf'<span class="y">{re.escape(sym)}</span></span> <b>{label}</b>', page)
    assert "not_found" in page and "gated repository" in page
    assert "Cells the estimator failed on" in page


def test_cheapest_fit_pivot(page):
    """One row per model; the Llama-8B 8k/checkpoint cell names the cheapest GPU, layout and price."""
    start = page.index('<table class="data summary">')
    table = page[start:page.index("</table>", start)]
    assert table.count('<th scope="row" class="model">') == len(MODELS)
    assert re.search(r"<th[^>]*>8k context</th>.*<th[^>]*>128k context</th>", table, re.S)
    row = table[table.index('data-model="meta-llama/Llama-3.1-8B-Instruct"'):]
    first = row[row.index("<td"):row.index("</td>")]
    assert "<b>L40S 48GB</b> TP1·PP1" in first and "$0.99" in first and "s-fits" in first
    nxt = table[table.index('data-model="Qwen/Qwen3-Next-80B-A3B-Instruct"'):]
    assert 'class="s-unsupported" title="linear attention (Gated DeltaNet) layers are not modelled"' in nxt


def test_template_override_takes_precedence(tmp_path, data):
    (tmp_path / "report.css").write_text("/* house-style-marker */ body { color: #000; }")
    (tmp_path / "_errors.html.j2").write_text(
        '<section id="errors"><h2>Problems</h2><p class="mine">{{ errors|length }} models failed</p></section>')
    out = H.render_html(*data, template_dir=tmp_path)
    assert "house-style-marker" in out and '<p class="mine">3 models failed</p>' in out
    assert "Cells the estimator failed on" not in out
    assert "Cheapest layout that fits" in out                 # the rest still comes from the bundle


def test_user_template_is_autoescaped_too(tmp_path, data):
    (tmp_path / "_errors.html.j2").write_text("<p>{% for e in errors %}{{ e.model }};{% endfor %}</p>")
    out = H.render_html(*data, template_dir=tmp_path)
    assert "=HYPERLINK(&#34;http://evil.example/&#34;" in out


def test_missing_template_dir_is_a_clear_error(data):
    with pytest.raises(FileNotFoundError, match="template directory not found"):
        H.render_html(*data, template_dir="/nonexistent/templates")


def test_write_html_is_utf8_file(tmp_path, data):
    p = H.write_html(tmp_path / "report.html", *data)
    text = p.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "✓" in text
    assert oct(p.stat().st_mode & 0o777) != oct(0o600)


# --- in a real browser ------------------------------------------------------------------------

EXERCISE = """
<script>
(function () {
  var out = [];
  try {
    var f = document.getElementById("model-filter");
    f.value = "qwen3-30b"; f.dispatchEvent(new Event("input"));
    var shown = document.querySelectorAll("table.matrix tbody tr:not([hidden])").length;
    out.push("filter=" + shown);
    f.value = ""; f.dispatchEvent(new Event("input"));
    var sel = document.getElementById("mx-select");
    sel.value = sel.options[2].value; sel.dispatchEvent(new Event("change"));
    out.push("visible=" + document.querySelectorAll("section.mx:not([hidden])").length);
    var t = document.getElementById("mx-text");
    t.value = "head"; t.dispatchEvent(new Event("change"));
    out.push("head=" + document.body.classList.contains("show-head"));
    var th = document.querySelectorAll("table.errors th")[2];
    th.click(); th.click();
    out.push("sorted=" + th.getAttribute("aria-sort") + ":" +
             document.querySelector("table.errors tbody tr td:nth-child(3)").textContent);
    var box = document.querySelector("input.gpu-toggle[value='l40s']");
    box.checked = false; box.dispatchEvent(new Event("change"));
    var row = document.querySelector("table.matrix tbody tr");
    var hiddenCells = Array.prototype.filter.call(row.cells, function (c) { return c.hidden; }).length;
    out.push("gpuoff=" + hiddenCells);
  } catch (e) { out.push("exception=" + e); }
  var p = document.createElement("pre"); p.id = "exercise"; p.textContent = out.join(";");
  document.body.appendChild(p);
})();
</script>
"""


def _chromium(url: str, *extra: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
             "--enable-logging=stderr", "--v=0", *extra, url],
            capture_output=True, text=True, timeout=180)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_loads_in_chromium_without_console_errors(tmp_path, data, page):
    html = page.replace("</body>", EXERCISE + "</body>")
    path = tmp_path / "report.html"
    path.write_text(html, encoding="utf-8")
    proc = _chromium(path.as_uri(), "--dump-dom")
    console = [line for line in proc.stderr.splitlines()
               if "CONSOLE" in line or "Uncaught" in line or "Content Security Policy" in line]
    assert console == [], console
    dom = proc.stdout
    assert '<pre id="exercise">' in dom, proc.stderr[-2000:]
    result = re.search(r'<pre id="exercise">([^<]*)</pre>', dom).group(1)
    assert result == "filter=6;visible=1;head=true;sorted=descending:not_found;gpuoff=8", result
    for mid, *_ in MODELS:
        if mid != HOSTILE_ID:
            assert mid in dom
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    for _, name, *_ in GPUS:
        assert name in dom


# --- the bundled default job, end to end (estimator + matrix + this renderer) ---------------

@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_default_job_html_shows_every_model_and_gpu_in_chromium(tmp_path, monkeypatch):
    run = pytest.importorskip("reportgen.run")
    from reportgen.job import load_job

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    root = H.bundled_template_dir().parent
    job = load_job(root / "model_lists" / "default.toml")
    job.formats = ["html"]
    prepared = run.prepare(job)
    out = run.run_job(prepared, tmp_path / "run", quiet=True).run_dir
    page = (out / "report.html").read_text(encoding="utf-8")
    proc = _chromium((out / "report.html").as_uri(), "--dump-dom")
    assert [ln for ln in proc.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln] == []
    dom = proc.stdout
    assert "</html>" in dom
    for ref in job.models:
        assert f'data-model="{ref.id}"' in page
    for g in prepared.gpus:
        assert g.name in dom
    assert page.count('<table class="matrix">') == len(job.matrix.max_model_len) * len(job.matrix.weight_dtype)


def test_empty_run_renders_with_errors():
    from reportgen import results as R

    out = H.render_html(R.empty_results(), synthetic_errors(), {"job_name": "nothing-resolved"})
    assert "nothing-resolved" in out and "No cells were evaluated in this run." in out
    assert "no such repository on the hub" in out and "Errors (3)" in out
