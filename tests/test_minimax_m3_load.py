"""MiniMax-M3 as the fixture ships it: which vLLM release loads it (issue 12, "no wrong number").

tests/data/configs_2026/MiniMaxAI--MiniMax-M3.json (the aiconfigurator-core 0.12.0 wheel's file, SOURCES.md) is a
flat text config: ``model_type`` ``minimax_m3``, ``architectures`` ``["MiniMaxM3ForCausalLM"]``, no ``auto_map``, no
``text_config``.  Read against every release sdist under /work/vllm_src (0.10.0 .. 0.34.0, 39 of them):

* no registry lists ``MiniMaxM3ForCausalLM`` (nor any ``MiniMaxM3<suffix>`` that ``_normalize_arch`` would try); the
  MiniMax-M3 names vLLM lists are ``MiniMaxM3SparseForCausalLM``, ``MiniMaxM3SparseForConditionalGeneration`` and
  ``MiniMaxM3MTP``, all from 0.24.0 (vllm 0.24.0 sdist registry.py:163-166, :486-489, :626; 0.34.0 :169-172,
  :537-540, :751);
* no release has a config class for model_type ``minimax_m3``: ``_CONFIG_REGISTRY`` holds ``minimax_m3_vl`` and
  ``minimax_m3_mtp`` from 0.24.0 (0.24.0 sdist transformers_utils/config.py:106-107, 0.34.0 :159-160), so vLLM calls
  ``AutoConfig.from_pretrained`` (0.10.0 :376, 0.24.0 :277, 0.34.0 :478) and re-raises its ValueError (0.10.0 :399,
  0.24.0 :298, 0.34.0 :499) -- transformers has no ``minimax_m3`` either (5.25.0, the venv's: minimax_m3_vl,
  minimax_m3_vl_text, minimax_m3_vl_vision);
* were it parsed, the Transformers backend cannot take it: ``_try_resolve_transformers`` looks up
  ``getattr(transformers, architecture, None)`` (0.34.0 registry.py:1377; 0.10.1 :543) and the config has no
  ``auto_map``, so ``_raise_for_unsupported`` raises "Model architectures ['MiniMaxM3ForCausalLM'] are not supported for
  now. Supported architectures: [...]" (0.10.0 registry.py:460, 0.24.0 :1062, 0.34.0 :1329).

So reportgen refuses the fixture on every release read (estimate/served.py ``never_served_reason``) and names the form
vLLM serves: the published MiniMaxAI/MiniMax-M3 checkpoint (minimax_m3_vl, MiniMaxM3SparseForConditionalGeneration).
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
from reportgen.estimate.served import (_FIRST, FIRST_SERVED, NEVER_LISTED, UNPARSED_MODEL_TYPES, never_served_reason,
                                       spec_for_version)
from reportgen.matrix import estimate_one
from sdist_support import SRC, needs_sdists, sdists as _sdists, ver as _ver

ROOT = Path(__file__).resolve().parents[1]
M3_PATH = ROOT / "tests/data/configs_2026/MiniMaxAI--MiniMax-M3.json"
M3 = json.loads(M3_PATH.read_text())
# the same fields under the names vLLM serves (tests/test_arch_minimax_m3.py M3_SERVED)
M3_SERVED = {**M3, "model_type": "minimax_m3_vl_text", "architectures": ["MiniMaxM3SparseForCausalLM"]}
REGISTRY_MSG = "Model architectures ['MiniMaxM3ForCausalLM'] are not supported for now. Supported architectures:"
CONFIG_MSG = "model type `minimax_m3` but Transformers does not recognize this architecture"
LINES = sorted({".".join(v.split(".")[:2]) for v in _FIRST["_releases_read"]}, key=lambda v: tuple(map(int, v.split("."))))



def test_the_fixture_is_flat_minimax_m3_without_remote_code():
    assert M3["model_type"] == "minimax_m3" and M3["architectures"] == ["MiniMaxM3ForCausalLM"]
    assert "auto_map" not in M3 and "text_config" not in M3 and "quantization_config" not in M3
    shared = Path("/work/shared/reference/configs_2026") / M3_PATH.name
    if shared.is_file():                    # the repo's copy is the shared fixture
        assert json.loads(shared.read_text()) == M3


@needs_sdists
def test_no_release_registry_lists_minimax_m3_for_causal_lm():
    sys.path.insert(0, str(ROOT / "scripts"))
    import first_served as fs

    text34 = (SRC / "vllm-0.34.0/vllm/config/model.py").read_text().splitlines()
    # _SUFFIX_TO_DEFAULTS, vllm 0.34.0 sdist config/model.py:2384-2401: the suffixes _normalize_arch swaps
    assert text34[2383].startswith("_SUFFIX_TO_DEFAULTS")
    suffixes = re.findall(r'^\s+\("(\w+)", \(', "\n".join(text34[2384:2401]), re.M)
    assert suffixes[0] == "ForCausalLM" and suffixes[-1] == "Model" and len(suffixes) == 15
    swaps = {"MiniMaxM3" + s for s in suffixes}
    served = {"MiniMaxM3SparseForCausalLM", "MiniMaxM3SparseForConditionalGeneration", "MiniMaxM3MTP"}
    assert not swaps & served
    releases = _sdists()
    assert len(releases) == 39 and releases[0][0] == "0.10.0" and releases[-1][0] == "0.34.0"
    for v, root in releases:
        registered, refused_by_name = fs.read_registry(root / fs.REGISTRY)
        m3 = {a for a in registered if a.startswith("MiniMaxM3")}
        assert m3 == (served if _ver(v) >= (0, 24, 0) else set()), v
        assert "MiniMaxM3ForCausalLM" not in refused_by_name and not swaps & set(registered), v
        # the message every release raises for it (0.10.0 registry.py:460, 0.34.0 :1329)
        assert 'f"Model architectures {architectures} are not supported for now. "' in \
            (root / fs.REGISTRY).read_text(), v
    reg24 = (SRC / "vllm-0.24.0" / fs.REGISTRY).read_text().splitlines()
    assert reg24[162].strip() == '"MiniMaxM3SparseForCausalLM": (' and reg24[485].strip() == \
        '"MiniMaxM3SparseForConditionalGeneration": ('
    reg34 = (SRC / "vllm-0.34.0" / fs.REGISTRY).read_text().splitlines()
    assert reg34[1328].strip() == 'f"Model architectures {architectures} are not supported for now. "'
    assert reg34[1376].strip() == "model_module = getattr(transformers, architecture, None)"
    assert FIRST_SERVED["MiniMaxM3SparseForCausalLM"] == FIRST_SERVED["MiniMaxM3SparseForConditionalGeneration"] == "0.24"
    assert "MiniMaxM3ForCausalLM" not in FIRST_SERVED
    assert set(NEVER_LISTED) == {"MiniMaxM3ForCausalLM", "Step3p7FlashForCausalLM"}   # + tests/test_step3p7_load.py


@needs_sdists
def test_no_release_has_a_config_class_for_model_type_minimax_m3():
    key = re.compile(r"""(^|[\s{(,])(["']minimax_m3["']\s*:|minimax_m3\s*=\s*["'])""", re.M)
    vl = re.compile(r"""(^|[\s{(,])minimax_m3_vl\s*=\s*["']""", re.M)
    for v, root in _sdists():
        text = (root / "vllm/transformers_utils/config.py").read_text()
        assert not key.search(text), v
        assert bool(vl.search(text)) == (_ver(v) >= (0, 24, 0)), v
        # an AutoConfig ValueError other than the remote-code one is re-raised as it is
        assert "requires you to execute the configuration file" in text and re.search(r"\n\s+raise e\n", text), v
    for v, auto, reraise in (("0.10.0", 376, 399), ("0.24.0", 277, 298), ("0.34.0", 478, 499)):
        lines = (SRC / f"vllm-{v}/vllm/transformers_utils/config.py").read_text().splitlines()
        assert lines[auto - 1].strip() == "config = AutoConfig.from_pretrained(" and lines[reraise - 1].strip() == "raise e"
    lines = (SRC / "vllm-0.34.0/vllm/transformers_utils/config.py").read_text().splitlines()
    assert lines[158].strip().startswith('minimax_m3_vl="MiniMaxM3VLConfig"')
    assert lines[159].strip() == 'minimax_m3_mtp="MiniMaxM3MTPConfig",'
    assert set(UNPARSED_MODEL_TYPES) == {"minimax_m3"}


def test_transformers_cannot_parse_or_build_it(tmp_path):
    """The venv's transformers (the one reportgen parses with): AutoConfig raises the error vLLM re-raises, and no
    class is named MiniMaxM3ForCausalLM for the Transformers backend to find."""
    import transformers
    from transformers import AutoConfig
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    assert "minimax_m3" not in CONFIG_MAPPING and "minimax_m3_vl_text" in CONFIG_MAPPING
    assert getattr(transformers, "MiniMaxM3ForCausalLM", None) is None
    assert getattr(transformers, "MiniMaxM3SparseForConditionalGeneration", None) is not None
    (tmp_path / "config.json").write_text(M3_PATH.read_text())
    for remote in (False, True):           # no auto_map: trust_remote_code changes nothing
        with pytest.raises(ValueError, match=re.escape(CONFIG_MSG)):
            AutoConfig.from_pretrained(tmp_path, trust_remote_code=remote)


@pytest.mark.parametrize("version", LINES)
def test_reportgen_refuses_the_fixture_on_every_release_read(version):
    spec = build_spec(M3)
    assert spec.unsupported_reason is None and spec.params_total == 426_174_565_632    # the family still reads it
    reason = spec_for_version(spec, version).unsupported_reason
    assert reason.startswith(f"vLLM {version} cannot parse this config: model_type 'minimax_m3'")
    assert CONFIG_MSG in reason and REGISTRY_MSG in reason
    assert "MiniMaxM3SparseForConditionalGeneration" in reason and "minimax_m3_vl" in reason and "v0.24.0" in reason


@pytest.mark.parametrize("version", ["0.10", "0.23", "0.24", "0.34"])
def test_a_matrix_cell_of_the_fixture_is_unsupported_with_no_figures(version):
    cell = estimate_one(build_spec(M3), 141.0, tp=8, max_model_len=131_072, block_size=128, vllm_version=version)
    assert cell["status"] == "unsupported" and REGISTRY_MSG in cell["reason"] and CONFIG_MSG in cell["reason"]
    assert cell.get("kv_cache_tokens") in (None, 0)


def test_each_failure_alone():
    """The architecture alone (a model type transformers parses) gives the registry refusal only; the model type
    alone (an architecture vLLM lists from 0.24) gives the config refusal on every release, also where the
    architecture is listed.  Unknown versions and releases newer than the newest read are not refused."""
    arch_only = never_served_reason("minimax_m3_vl_text", ["MiniMaxM3ForCausalLM"], "0.34")
    assert arch_only.startswith("vLLM 0.34 cannot load this config: no vLLM release 0.10.0 .. 0.34.0 lists")
    assert REGISTRY_MSG in arch_only and CONFIG_MSG not in arch_only
    for v in ("0.23", "0.34"):
        type_only = never_served_reason("minimax_m3", ["MiniMaxM3SparseForCausalLM"], v)
        assert CONFIG_MSG in type_only and "Model architectures" not in type_only
    # another listed architecture next to it: vLLM takes that one
    assert never_served_reason("minimax_m3_vl_text", ["MiniMaxM3ForCausalLM", "MiniMaxM3SparseForCausalLM"],
                               "0.34") is None
    for v in (None, "", "1.0", "0.35"):
        assert never_served_reason("minimax_m3", ["MiniMaxM3ForCausalLM"], v) is None


def test_the_served_names_are_priced_from_0_24():
    spec = build_spec(M3_SERVED)
    assert "is listed from v0.24 on" in spec_for_version(spec, "0.23").unsupported_reason
    for v in ("0.24", "0.34"):
        assert spec_for_version(spec, v).unsupported_reason is None
        cell = estimate_one(spec, 141.0, tp=8, max_model_len=131_072, block_size=128, vllm_version=v)
        assert cell["status"] == "fits" and cell["kv_cache_tokens"] > 0 and cell["block_size"] == 128


def test_estimate_cli_says_what_vllm_says():
    from reportgen.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["estimate", str(M3_PATH), "--json", "--offline", "--gpu", "H200", "--tp", "8", "--block-size", "128"])
    r = json.loads(out.getvalue())
    assert r["status"] == "unsupported" and REGISTRY_MSG in r["reason"] and CONFIG_MSG in r["reason"]
