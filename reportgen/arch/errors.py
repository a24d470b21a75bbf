"""Errors raised while turning a config into a ModelSpec.

Two outcomes are deliberately different:

* ``ConfigError`` -- the config itself is broken (a field is zero, negative,
  missing, of the wrong type or absurdly large).  The caller reports the model
  as ``malformed_config`` and names the field, so a user can fix the file.
* ``Unsupported`` -- the config is fine but describes something we do not model
  (linear attention, Mamba, DSA indexers, ...).  It never escapes
  ``build_spec``: it becomes ``ModelSpec.unsupported_reason``, because a wrong
  number is worse than no number.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A config field is invalid; ``field`` names it (dotted for sub-configs, e.g. ``text_config.hidden_size``)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class Unsupported(Exception):
    """Internal signal: the architecture uses a feature we do not model (becomes ``unsupported_reason``)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)
