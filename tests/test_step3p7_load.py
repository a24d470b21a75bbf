"""Step-3.7-Flash as the fixture ships it: which vLLM release loads it (issue 12, "no wrong number").

tests/data/configs_2026/stepfun-ai--Step-3.7-Flash.json (= ../shared/reference, the aiconfigurator-core wheel's file)
is flat: ``model_type`` ``step3p7``, ``architectures`` ``["Step3p7FlashForCausalLM"]``, the text fields at top level,
no ``text_config`` / ``vision_config`` / ``auto_map``.  Read against every release sdist under /work/vllm_src
(0.10.0 .. 0.34.0, 39 of them):

* the string ``Step3p7Flash`` is in no ``.py`` file of any sdist: no registry entry, alias, ``_normalize_arch`` target
  (the suffix swaps keep the ``Step3p7Flash`` stem), config class or hook names it.  The Step names vLLM lists are
  ``Step3p5ForCausalLM`` / ``Step3p5MTP`` from 0.15.1 (0.15.1 registry.py:191, :480) and
  ``Step3p7ForConditionalGeneration`` from 0.23.0 (0.23.0 registry.py:579; 0.34.0 :214, :652, :773);
* no release has a config class for model_type ``step3p7`` (``_CONFIG_REGISTRY``: ``step3p5`` -> vLLM's
  ``Step3p5Config`` in 0.15.1 .. 0.32.0, transformers' ``Step3p7TextConfig`` in 0.33.0 :166 / 0.34.0 :171), so vLLM
  calls ``AutoConfig.from_pretrained`` (0.34.0 transformers_utils/config.py:478) and re-raises its ValueError (:499):
  with a transformers that has ``step3p7`` (the venv's 5.25.0) the file parses as ``Step3p7Config``, which keeps the
  flat fields as stray attributes and builds its DEFAULT language model (vocab 128,815 where the file says 128,896);
* ``_try_resolve_transformers`` finds no ``transformers.Step3p7FlashForCausalLM`` and no ``auto_map`` (0.34.0
  registry.py:1377; 0.10.1 :543) and returns None, so ``_raise_for_unsupported`` raises "Model architectures
  ['Step3p7FlashForCausalLM'] are not supported for now. Supported architectures: [...]" (0.10.1 :498, 0.23.0 :1048,
  0.34.0 :1329).  0.10.0 alone appends its Transformers backend class instead (config.py:703-717).

So reportgen refuses the fixture on every release read, with vLLM's error first (estimate/served.py ``NEVER_LISTED``),
and names the form vLLM serves; the step3p7 arithmetic stays tested through that form (``shipped_nested``: the same
fields nested as the published checkpoint ships them, ``Step3p7ForConditionalGeneration``), priced from 0.23.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
from pathlib import Path

import pytest

from reportgen.arch import build_spec
from reportgen.estimate.served import FIRST_SERVED, NEVER_LISTED, UNPARSED_MODEL_TYPES, never_served_reason, \
    spec_for_version
from reportgen.matrix import estimate_one
from sdist_support import SRC, needs_sdists, sdists as _sdists, ver as _ver

sys.path.insert(0, str(Path(__file__).parent))
from step3p7_configs import shipped_flat, shipped_nested  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FLAT_PATH = ROOT / "tests/data/configs_2026/stepfun-ai--Step-3.7-Flash.json"
FLAT = shipped_flat()
REGISTRY_MSG = "Model architectures ['Step3p7FlashForCausalLM'] are not supported for now. Supported architectures:"
FAMILY_MSG = "step3p7 without text_config"
SERVED = "Step3p7ForConditionalGeneration"
LINES = ["0.10", "0.11", "0.12", "0.13", "0.14", "0.15", "0.16", "0.17", "0.18", "0.19", "0.20", "0.21", "0.22",
         "0.23", "0.24", "0.25", "0.26", "0.27", "0.28", "0.29", "0.30", "0.31", "0.32", "0.33", "0.34"]



def _lines(v: str, rel: str) -> list[str]:
    return (SRC / f"vllm-{v}" / rel).read_text().splitlines()


def test_the_fixture_is_flat_step3p7_without_remote_code():
    assert FLAT["model_type"] == "step3p7" and FLAT["architectures"] == ["Step3p7FlashForCausalLM"]
    assert not {"auto_map", "text_config", "vision_config", "quantization_config"} & set(FLAT)
    assert FLAT["vocab_size"] == 128_896 and FLAT["num_hidden_layers"] == 45
    shared = Path("/work/shared/reference/configs_2026") / FLAT_PATH.name
    if shared.is_file():                    # the repo's copy is the shared fixture
        assert json.loads(shared.read_text()) == FLAT


@needs_sdists
def test_no_release_names_step3p7flash_anywhere():
    """No .py file of any sdist contains "Step3p7Flash": no registry key, alias, remap or config class."""
    releases = _sdists()
    assert len(releases) == 39 and releases[0][0] == "0.10.0" and releases[-1][0] == "0.34.0"
    files = 0
    for v, root in releases:
        for p in (root / "vllm").rglob("*.py"):
            files += 1
            assert "Step3p7Flash" not in p.read_text(errors="ignore"), p
    assert files > 30_000


@needs_sdists
def test_registry_lists_the_published_names_only():
    sys.path.insert(0, str(ROOT / "scripts"))
    import first_served as fs

    # _SUFFIX_TO_DEFAULTS (0.34.0 config/model.py:2384-2401): _normalize_arch swaps the suffix, keeps the stem
    text34 = _lines("0.34.0", "vllm/config/model.py")
    suffixes = re.findall(r'^\s+\("(\w+)", \(', "\n".join(text34[2384:2401]), re.M)
    assert len(suffixes) == 15 and suffixes[0] == "ForCausalLM"
    swaps = {"Step3p7Flash" + s for s in suffixes}
    reg34 = _lines("0.34.0", fs.REGISTRY)
    assert "base_arch = architecture.replace(suffix, repl_suffix)" in "\n".join(reg34[1420:1445])
    for v, root in _sdists():
        registered, refused_by_name = fs.read_registry(root / fs.REGISTRY)
        step = {a for a in registered if a.startswith(("Step3p5", "Step3p7"))}
        want = set()
        if _ver(v) >= (0, 15, 1):
            want |= {"Step3p5ForCausalLM", "Step3p5MTP"}
        if _ver(v) >= (0, 23, 0):
            want.add(SERVED)
        assert step == want, v
        assert not swaps & (set(registered) | set(refused_by_name)), v
    # the cited lines
    entry = '"Step3p7ForConditionalGeneration": ("step3p7", "Step3p7ForConditionalGeneration"),'
    assert _lines("0.23.0", fs.REGISTRY)[578].strip() == entry and reg34[651].strip() == entry
    assert _lines("0.15.1", fs.REGISTRY)[190].strip() == '"Step3p5ForCausalLM": ("step3p5", "Step3p5ForCausalLM"),'
    assert FIRST_SERVED[SERVED] == "0.23" and FIRST_SERVED["Step3p5ForCausalLM"] == "0.15"
    assert "Step3p7FlashForCausalLM" not in FIRST_SERVED and "Step3p7FlashForCausalLM" in NEVER_LISTED


@needs_sdists
def test_the_fallback_raises_for_it_from_0_10_1():
    """0.10.1 on: the Transformers fallback needs transformers.<arch> or an auto_map AutoModel, else None and the
    registry raises.  0.10.0: ModelConfig.architectures appends the backend class for any config."""
    reg = {v: _lines(v, "vllm/model_executor/models/registry.py") for v in ("0.10.0", "0.10.1", "0.23.0", "0.34.0")}
    assert reg["0.10.1"][542].strip() == "model_module = getattr(transformers, architecture, None)"
    assert reg["0.34.0"][1376].strip() == "model_module = getattr(transformers, architecture, None)"
    for v, line in (("0.10.0", 460), ("0.10.1", 498), ("0.23.0", 1048), ("0.34.0", 1329)):
        assert reg[v][line - 1].strip().startswith('f"Model architectures {architectures} are not supported for now'), v
    cfg100 = _lines("0.10.0", "vllm/config.py")
    assert cfg100[702].strip() == "def architectures(self) -> list[str]:"
    assert cfg100[715].strip() == "architectures.append(transformers_backend_cls)"
    assert reg["0.10.0"][257].strip().startswith('"TransformersForMultimodalLM": ("transformers",')
    for v, root in _sdists():
        cfg = root / "vllm/config/model.py"
        cfg = cfg if cfg.is_file() else (root / "vllm/config/__init__.py" if (root / "vllm/config").is_dir()
                                         else root / "vllm/config.py")
        appends = "architectures.append(transformers_backend_cls)" in cfg.read_text()
        assert appends == (v == "0.10.0"), v
        assert ("def _try_resolve_transformers" in (root / "vllm/model_executor/models/registry.py").read_text()) \
            == (v != "0.10.0"), v


@needs_sdists
def test_no_release_has_a_config_class_or_hook_for_step3p7():
    key = re.compile(r"""(^|[\s{(,])(["']step3p7["']\s*:|step3p7\s*=\s*["'])""", re.M)
    step3p5 = re.compile(r"""^\s*step3p5\s*=\s*["'](\w+)["']""", re.M)
    for v, root in _sdists():
        text = (root / "vllm/transformers_utils/config.py").read_text()
        assert not key.search(text), v
        m = step3p5.search(text)
        if _ver(v) < (0, 15, 1):
            assert m is None, v
        else:
            assert m and m.group(1) == ("Step3p7TextConfig" if _ver(v) >= (0, 33, 0) else "Step3p5Config"), v
        hooks = (root / "vllm/model_executor/models/config.py")
        assert not hooks.is_file() or not re.search(r"step3p[57]", hooks.read_text(), re.I), v
        assert "requires you to execute the configuration file" in text and re.search(r"\n\s+raise e\n", text), v
    assert _lines("0.33.0", "vllm/transformers_utils/config.py")[165].strip().startswith('step3p5="Step3p7TextConfig"')
    assert _lines("0.34.0", "vllm/transformers_utils/config.py")[170].strip().startswith('step3p5="Step3p7TextConfig"')
    lines = _lines("0.34.0", "vllm/transformers_utils/config.py")
    assert lines[477].strip() == "config = AutoConfig.from_pretrained(" and lines[498].strip() == "raise e"
    assert "step3p7" not in UNPARSED_MODEL_TYPES          # transformers parses it; the published checkpoint is step3p7


def test_transformers_parses_it_as_the_default_model_and_has_no_class_of_the_name(tmp_path):
    """The venv's transformers: AutoConfig gives Step3p7Config with its default text_config (the flat fields are
    ignored), and no class is named Step3p7FlashForCausalLM for the Transformers backend to find."""
    import transformers
    from transformers import AutoConfig

    (tmp_path / "config.json").write_text(FLAT_PATH.read_text())
    conf = AutoConfig.from_pretrained(tmp_path)
    assert type(conf).__name__ == "Step3p7Config" and conf.architectures == ["Step3p7FlashForCausalLM"]
    assert conf.text_config.vocab_size == 128_815 != FLAT["vocab_size"]
    assert not hasattr(conf, "auto_map") or not conf.auto_map
    assert getattr(transformers, "Step3p7FlashForCausalLM", None) is None
    assert getattr(transformers, SERVED, None) is not None


@pytest.mark.parametrize("version", LINES)
def test_reportgen_refuses_the_fixture_on_every_release_read_with_vllms_error_first(version):
    spec = build_spec(FLAT)
    assert spec.unsupported_reason.startswith(FAMILY_MSG)          # the family's own refusal is unchanged
    reason = spec_for_version(spec, version).unsupported_reason
    assert reason.startswith(f"vLLM {version} cannot load this config: no vLLM release 0.10.0 .. 0.34.0 lists "
                             "Step3p7FlashForCausalLM")
    assert REGISTRY_MSG in reason and SERVED in reason and "v0.23.0" in reason
    assert "model type `step3p7` but Transformers does not recognize this architecture" in reason
    assert reason.index(REGISTRY_MSG) < reason.index(FAMILY_MSG)    # vLLM's failure, then reportgen's
    assert ("config.py:703-717" in reason) == (version == "0.10")


def test_unknown_or_newer_releases_keep_the_family_refusal():
    spec = build_spec(FLAT)
    for v in (None, "", "0.35", "1.0"):
        assert spec_for_version(spec, v).unsupported_reason == spec.unsupported_reason
    assert never_served_reason("step3p7", ["Step3p7FlashForCausalLM", SERVED], "0.34") is None   # a listed one too


@pytest.mark.parametrize("version", ["0.10", "0.22", "0.23", "0.34"])
def test_a_matrix_cell_of_the_fixture_is_unsupported_with_vllms_error(version):
    cell = estimate_one(build_spec(FLAT), 141.0, tp=8, max_model_len=65_536, vllm_version=version)
    assert cell["status"] == "unsupported" and REGISTRY_MSG in cell["reason"] and FAMILY_MSG in cell["reason"]
    assert cell.get("kv_cache_tokens") in (None, 0)


def test_estimate_cli_says_what_vllm_says():
    from reportgen.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["estimate", str(FLAT_PATH), "--json", "--offline", "--gpu", "H200", "--tp", "8"])
    r = json.loads(out.getvalue())
    assert r["status"] == "unsupported" and REGISTRY_MSG in r["reason"]


def test_the_served_form_is_priced_from_0_23():
    """The same fields nested as the published checkpoint ships them: refused before 0.23 ("listed from v0.23 on"),
    priced from 0.23.  KV: 45 layers x 8 K/V heads x 128 x (K + V) x 2 B = 184,320 B/token in bf16 (every layer
    holds 8 K/V heads; the 33 sliding layers keep a 512-token window)."""
    spec = build_spec(shipped_nested())
    assert spec.unsupported_reason is None and spec.architectures[0] == SERVED
    assert spec.kv_bytes_per_token(2) == 45 * 8 * 128 * 2 * 2 == 184_320
    assert "is listed from v0.23 on" in spec_for_version(spec, "0.22").unsupported_reason
    for v in ("0.23", "0.34"):
        assert spec_for_version(spec, v).unsupported_reason is None
        cell = estimate_one(spec, 141.0, tp=8, max_model_len=65_536, vllm_version=v)
        assert cell["status"] == "fits" and cell["kv_cache_tokens"] > 0, cell.get("reason")
