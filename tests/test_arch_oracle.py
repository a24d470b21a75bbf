"""Cross-check against torch's meta device: part of ``make test`` (and so of CI).

The same method as ../shared/tools/oracle_params.py: instantiate the model
from its config under ``torch.device("meta")`` and count ``named_parameters()``
(shared tensors once): ``meta_count`` of tests/oracle_support.py, the harness every
oracle module shares (imported from here too by older modules).  Run on the bundled configs, on each family's
transformers class defaults and on ``ORACLE_EXAMPLES`` (default 200) random
configs *per family*, so shapes no reference config has are checked too.

torch (the CPU build, ``torch==2.13.0``) comes with the ``oracle`` extra that
``make test`` installs; it is never a runtime dependency.  Without torch the
module is skipped, so a plain ``pip install -e .[test]`` still runs the rest.
``ORACLE_EXAMPLES=20 pytest tests/test_arch_oracle.py`` for a quick pass.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, strategies as st  # noqa: E402

from reportgen.arch import build_spec  # noqa: E402
from oracle_support import class_defaults_test, examples, meta_count, oracle_settings  # noqa: E402
from test_arch_properties import FAMILIES, TEMPLATES, family_configs  # noqa: E402


@pytest.mark.parametrize("family", FAMILIES)
def test_bundled_family_config_matches_meta_device(family):
    assert build_spec(TEMPLATES[family]).params_total == meta_count(TEMPLATES[family])


ORACLE_EXAMPLES = examples()


@pytest.mark.parametrize("family", FAMILIES)
@oracle_settings(ORACLE_EXAMPLES, derandomize=True, database=None)
@given(data=st.data())
def test_random_family_configs_match_meta_device(family, data):
    cfg = data.draw(family_configs(family))
    assert build_spec(cfg).params_total == meta_count(cfg)


# families added later: their transformers class defaults too (phimoe's defaults are refused: no biases)
NEW_FAMILY_DEFAULTS = ("olmo2", "olmo3", "olmoe", "glm4", "exaone4", "seed_oss", "starcoder2", "granitemoe",
                       "arcee")


test_new_family_default_config_matches_meta_device = class_defaults_test(NEW_FAMILY_DEFAULTS)
