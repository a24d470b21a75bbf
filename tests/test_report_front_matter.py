"""The report's front matter (title block, Assumptions, GPUs) as a reader sees it.

Regression for a PDF whose page 1 held only the title and the status chips (the side-by-side
Assumptions | GPUs block could not split, so it moved to page 2 and ran onto page 3), and whose
assumption keys broke mid-word ("gpu_mem / ory_utiliza / tion") because the shared
``overflow-wrap: anywhere`` let the key column shrink to a few characters.

The assumptions below are the default job's (reportgen/run.py ``_assumptions`` at vLLM 0.34):
long values and 13 keys are what pushed the block off page 1; the synthetic meta has only 6.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from reportgen.outputs import html as H
from test_report_synthetic import synthetic_errors, synthetic_meta, synthetic_results

DEFAULT_JOB_ASSUMPTIONS = {
    "gpu_memory_utilization": "vLLM default for 0.34: 1 (the extensible KV cache)",
    "enable_extensible_kv_cache": True,
    "max_num_batched_tokens": "vLLM default by GPU (8192 / 2048 below 70 GiB or on an A100; 0.28+: 16384 from "
                              "160 GiB; 0.22+: at least the largest multimodal item of a prefix LM such as "
                              "Gemma-4 26B / 31B)",
    "max_num_seqs": "vLLM default by GPU (1024 / 256 below 70 GiB or on an A100)",
    "kv_cache_dtype": ["auto"],
    "weights": "config shapes x storage scheme",
    "block_size": "vLLM default for 0.34: 64 (backends may raise it)",
    "vllm_version": "0.34",
    "vllm_profile": "0.34+",
    "max_nodes": 2,
    "allow_cross_node_tp": False,
    "limit_mm_per_prompt": "vLLM default (every modality allowed)",
    "kv_cache_dtype_per_model": "deepseek-ai/DeepSeek-V4-Flash: fp8",
}
# the keys build.py adds from the results' axes (context lengths, weight dtypes, ...)
DERIVED_KEYS = ["context lengths (max_model_len)", "weight dtypes", "concurrency targets",
                "tensor parallel", "pipeline parallel"]


@pytest.fixture(scope="module")
def data():
    # 8 GPUs like the default job; few models: the front matter does not depend on them
    res = synthetic_results(n_models=4, n_gpus=8, contexts=(8192, 32768))
    meta = synthetic_meta(res) | {"assumptions": DEFAULT_JOB_ASSUMPTIONS}
    return res, synthetic_errors(), meta


def assumption_headers(page: str) -> list[str]:
    table = re.search(r'<section class="assumptions".*?<tbody>(.*?)</tbody>', page, re.S).group(1)
    return re.findall(r'<th scope="row">(.*?)</th>', table, re.S)


@pytest.mark.parametrize("medium", ["html", "pdf"])
def test_assumption_keys_break_only_after_underscores(data, medium):
    page = H.render_report(*data, medium=medium)
    ths = assumption_headers(page)
    keys = list(DEFAULT_JOB_ASSUMPTIONS) + DERIVED_KEYS
    assert [th.replace("<wbr>", "") for th in ths] == keys
    for th, key in zip(ths, keys):
        # a break opportunity after every underscore and nowhere else (spaces break as usual)
        assert th == key.replace("_", "_<wbr>"), th
    # the one key with underscores both before and after a space
    assert "context lengths (max_<wbr>model_<wbr>len)" in ths


def test_assumption_keys_are_not_wrapped_anywhere():
    """The shared ``td, th { overflow-wrap: anywhere }`` (long ids) must not reach the key column:
    ``anywhere`` lets a table column shrink to one character, which is what split the keys."""
    css = (H.bundled_template_dir() / "report.css").read_text()
    rule = re.search(r"table\.kv th\s*\{([^}]*overflow-wrap[^}]*)\}", css)
    assert rule and re.search(r"overflow-wrap:\s*normal", rule.group(1)), "table.kv th needs overflow-wrap: normal"
    assert css.index(rule.group(0)) > css.index("td, th, h3, dd, code { overflow-wrap: anywhere; }")


needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")


@needs_poppler
def test_pdf_page_one_carries_assumptions_and_gpus_with_whole_keys(data, tmp_path):
    pytest.importorskip("weasyprint")
    from reportgen.outputs import pdf as P

    path = P.write_pdf(tmp_path / "report.pdf", *data)
    out = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    pages = out.split("\f")
    first = pages[0]
    assert "Assumptions" in first and "GPUs" in first and "Usable GiB" in first
    # the whole front matter fits page 1; the first section starts page 2 (its forced page break)
    assert "Cheapest layout that fits" in pages[1] and "Cheapest layout that fits" not in first
    for key in list(DEFAULT_JOB_ASSUMPTIONS) + DERIVED_KEYS:
        # a key may wrap after an underscore or at a space, never inside a word
        pattern = "".join({"_": r"_\s*", " ": r"\s+"}.get(p, re.escape(p)) for p in re.split(r"([_ ])", key))
        assert re.search(pattern, first), f"{key!r} not whole on page 1"
    for name in [g["name"] for g in data[2]["gpus"]]:
        assert name in first, name                              # every GPU row is on page 1
