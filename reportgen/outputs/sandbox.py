"""User templates run sandboxed, confined to their directories, and are checked before any work.

Why: ``--templates DIR`` (or ``templates =`` in a job) is code from whoever wrote the job.
Rendering it in a plain Jinja environment gives it Python's object graph
(``{{ fmt_num.__globals__['os'].system(...) }}``); a plain FileSystemLoader follows a
symlink in that directory to any file on disk (``report.css -> /etc/shadow`` would be inlined
into the report).  So:

* templates render in ``jinja2.sandbox.SandboxedEnvironment`` (no ``__globals__``,
  ``__class__``, ``mro``..., ranges capped);
* :class:`ConfinedLoader` serves only regular files whose resolved path is inside one of the
  template directories (no ``../``, no symlink out), read with a size cap;
* :func:`check_templates` parses every template file of a user directory before the run
  starts, so a syntax error is exit 2 before any model is resolved.  A template that parses
  but fails while rendering is reported by ``run.render_reports`` with the tables kept.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
from jinja2.loaders import split_template_path
from jinja2.sandbox import SandboxedEnvironment

from reportgen.usererrors import InputFileError, TemplateError

TEMPLATE_MAX_BYTES = 1024 * 1024
TEMPLATE_SUFFIXES = (".j2", ".html", ".css", ".js", ".jinja", ".jinja2")
MAX_TEMPLATE_FILES = 500


class ConfinedLoader(jinja2.BaseLoader):
    """Like FileSystemLoader over ``roots`` (first match wins), but a name resolving outside its
    root (``..``, an absolute path, a symlink out) is refused, and files are size-capped."""

    def __init__(self, roots: list[Path]):
        self.roots = [Path(r).resolve() for r in roots]

    def get_source(self, environment, template):
        from reportgen.safe_read import read_text_file

        pieces = split_template_path(template)          # raises TemplateNotFound on '..'
        for root in self.roots:
            path = root.joinpath(*pieces)
            if not path.exists() and not path.is_symlink():
                continue
            resolved = path.resolve()
            if not resolved.is_relative_to(root):
                raise TemplateError(f"template {template!r} in {str(root)!r} links outside the template "
                                    "directory; refused")
            try:
                source = read_text_file(resolved, "template", TEMPLATE_MAX_BYTES)
            except InputFileError as e:
                raise TemplateError(str(e)) from None
            mtime = resolved.stat().st_mtime
            return source, str(resolved), lambda: resolved.exists() and resolved.stat().st_mtime == mtime
        raise jinja2.TemplateNotFound(template)

    def list_templates(self):
        found = set()
        for root in self.roots:
            for p in root.rglob("*"):
                if p.is_file():
                    found.add(p.relative_to(root).as_posix())
        return sorted(found)


def sandboxed_environment(dirs: list[Path]) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=ConfinedLoader(dirs),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def check_templates(template_dir: str | Path | None) -> None:
    """Parse every template file of a user directory; TemplateError (exit 2) naming the file and
    line of the first that does not parse, or that escapes the directory."""
    if template_dir is None:
        return
    from reportgen.outputs.html import environment

    root = Path(template_dir).expanduser()
    if not root.is_dir():
        raise TemplateError(f"templates: directory {str(template_dir)!r} not found")
    root = root.resolve()
    env = environment(root)
    n = 0
    for p in sorted(root.rglob("*")):
        if not p.name.endswith(TEMPLATE_SUFFIXES) or not (p.is_file() or p.is_symlink()):
            continue
        n += 1
        if n > MAX_TEMPLATE_FILES:
            raise TemplateError(f"templates: more than {MAX_TEMPLATE_FILES} template files in {str(root)!r}")
        name = p.relative_to(root).as_posix()
        try:
            source, _, _ = env.loader.get_source(env, name)
            env.parse(source, name, str(p))
        except jinja2.TemplateSyntaxError as e:
            raise TemplateError(f"template {name!r} does not parse (line {e.lineno}): {e.message}") from None
