"""report.html: the self-contained fit report rendered from the Jinja templates.

Why this shape: the templates only lay out what ``report_data.build_report``
decided, so HTML and PDF (``pdf.py`` renders the same templates with
``medium="pdf"``) never disagree.  Autoescaping is always on — model ids and
reasons come from users and remote configs — and the page inlines its CSS and
JS so it opens from ``file://`` with no fetches.

Templates are looked up in the user's directory first (``--templates DIR``;
it may override any single file, e.g. only ``report.css``), then in the
bundled set: ``reportgen/templates`` in an installed wheel, the top-level
``templates/`` beside the package in a source checkout.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import jinja2
import polars as pl

from reportgen.outputs import report_data as RD

TEMPLATE_NAME = "report.html.j2"


def bundled_template_dir() -> Path:
    """The templates shipped with reportgen (wheel layout first, then the source checkout)."""
    pkg = Path(__file__).resolve().parent.parent          # .../reportgen
    for candidate in (pkg / "templates", pkg.parent / "templates"):
        if (candidate / TEMPLATE_NAME).is_file():
            return candidate
    raise FileNotFoundError(
        f"reportgen's bundled templates are missing: looked for {TEMPLATE_NAME} in "
        f"{pkg / 'templates'} and {pkg.parent / 'templates'}")


def template_dirs(template_dir: Path | str | None = None) -> list[Path]:
    """Search path: the user's directory (if any) first, then the bundled templates."""
    dirs = []
    if template_dir is not None:
        d = Path(template_dir).expanduser().resolve()
        if not d.is_dir():
            raise FileNotFoundError(f"template directory not found: {d}")
        dirs.append(d)
    dirs.append(bundled_template_dir())
    return dirs


def environment(template_dir: Path | str | None = None) -> jinja2.Environment:
    """A sandboxed Jinja environment, autoescaping on for every template (including .j2/.css/.js
    includes), loading only from the template directories (see outputs/sandbox.py)."""
    from reportgen.outputs.sandbox import sandboxed_environment

    env = sandboxed_environment(template_dirs(template_dir))
    env.globals.update(
        fmt_price=RD.fmt_price, fmt_num=RD.fmt_num, fmt_ctx=RD.fmt_ctx,
        fmt_params=RD.fmt_params, fmt_bytes=RD.fmt_bytes, fmt_conc=RD.fmt_conc,
    )
    return env


def render_report(
    results: pl.DataFrame,
    errors: pl.DataFrame | None,
    meta: dict | None,
    template_dir: Path | str | None = None,
    *,
    medium: str = "html",
    max_columns: int = 16,
) -> str:
    """Render the report template for ``medium`` ("html" or "pdf")."""
    context = RD.build_report(results, errors, meta, medium=medium, max_columns=max_columns)
    return environment(template_dir).get_template(TEMPLATE_NAME).render(**context)


def render_html(
    results: pl.DataFrame,
    errors: pl.DataFrame | None,
    meta: dict | None,
    template_dir: Path | str | None = None,
) -> str:
    """The report as one self-contained HTML string."""
    return render_report(results, errors, meta, template_dir, medium="html")


def write_atomic(path: Path | str, data: str | bytes) -> Path:
    """Write ``data`` to a temporary sibling then rename, so a reader never sees half a file.

    Shared by the HTML, PDF and XLSX writers (the run directory as a whole is
    made atomic by the pipeline; this covers ``reportgen render`` into an
    existing run directory).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)        # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_html(
    path: Path | str,
    results: pl.DataFrame,
    errors: pl.DataFrame | None,
    meta: dict | None,
    template_dir: Path | str | None = None,
) -> Path:
    """Render and write report.html (UTF-8); returns the path."""
    return write_atomic(path, render_html(results, errors, meta, template_dir))
