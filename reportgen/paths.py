"""Where bundled data lives, in a source checkout and in an installed wheel.

The wheel maps the top-level templates/ and model_lists/ into the package
(pyproject force-include); a source or editable checkout keeps them beside the
package.  Both layouts are supported so `make report` and `pip install` agree.
"""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def _first_dir(name: str) -> Path:
    for cand in (_PKG / name, _PKG.parent / name):
        if cand.is_dir():
            return cand
    return _PKG / name


def templates_dir() -> Path:
    return _first_dir("templates")


def model_lists_dir() -> Path:
    return _first_dir("model_lists")
