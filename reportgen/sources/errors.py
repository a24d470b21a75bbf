"""Why a model could not be resolved, in words a user can act on.

Every failure of the source layer becomes one :class:`SourceError` per model (never an
exception that sinks the batch).  ``kind`` is a small closed vocabulary because it ends up
in ``errors.csv`` and in exit-code decisions; ``message`` is one line that says what to do.

Tokens must never reach a message, a log line or an output: messages are composed here
from our own words and the model id, never from server text, and :func:`redact` is applied
to anything that might echo a request (exception strings we fall back to).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # avoid importing job.py (and its TOML machinery) at runtime just for a type
    from reportgen.job import ModelRef

KINDS = ("not_found", "gated", "network", "malformed_config", "invalid_id")

# Hugging Face user access tokens look like ``hf_`` + 30+ alphanumerics; OAuth/API tokens
# similar.  A bearer header may be echoed by proxies in error bodies.
_TOKEN_PATTERNS = (
    re.compile(r"hf_[A-Za-z0-9]{8,}"),
    re.compile(r"(?i)(authorization:?\s*bearer\s+)\S+"),
)


def redact(text: str, token: str | None = None) -> str:
    """Remove ``token`` and anything shaped like an HF token or a bearer header from ``text``."""
    if token:
        text = text.replace(token, "***")
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "***", text)
    return text


def one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace so a message fits one CSV cell / one terminal line."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class SourceError(Exception):
    """One model that could not be resolved: ``ref``, ``kind`` (see :data:`KINDS`), ``message``.

    Returned (not raised) by :func:`reportgen.sources.resolve_all` so a batch keeps going;
    it is an ``Exception`` so single-model callers can ``raise`` it.
    """

    def __init__(self, ref: ModelRef, kind: str, message: str):
        if kind not in KINDS:
            raise ValueError(f"unknown SourceError kind {kind!r}; expected one of {KINDS}")
        self.ref = ref
        self.kind = kind
        self.message = one_line(redact(message))
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.ref}: {self.kind}: {self.message}"

    def __repr__(self) -> str:
        return f"SourceError(ref={self.ref!r}, kind={self.kind!r}, message={self.message!r})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, SourceError) and (self.ref, self.kind, self.message)
                == (other.ref, other.kind, other.message))

    def __hash__(self) -> int:
        return hash((self.ref, self.kind, self.message))

    def __reduce__(self):  # picklable across process pools despite the custom __init__
        return (SourceError, (self.ref, self.kind, self.message))


def gated_message(repo_id: str, endpoint: str = "https://huggingface.co") -> str:
    return (f"gated or access-restricted repository: set HF_TOKEN (or run `hf auth login`) with a token "
            f"whose account has accepted the licence on the model page {endpoint.rstrip('/')}/{repo_id}")
