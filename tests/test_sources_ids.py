"""What counts as a local path, a Hub id, a revision, a bundle key."""

import pytest

from reportgen.sources.ids import bundle_key, hub_id_problem, looks_like_path, revision_problem


@pytest.mark.parametrize("model_id", ["/abs/dir", "./rel", "../up/model", "~/models/x", "cfg.json",
                                      "some/dir/config.JSON", "C:\\models\\x", ".\\win"])
def test_path_like(model_id):
    assert looks_like_path(model_id)


@pytest.mark.parametrize("model_id", ["Qwen/Qwen3-8B", "gpt2", "meta-llama/Llama-3.1-8B-Instruct",
                                      "RedHatAI/Qwen3.5-9B-quantized.w4a16"])
def test_hub_ids_are_not_paths_and_are_valid(model_id):
    assert not looks_like_path(model_id)
    assert hub_id_problem(model_id) is None


@pytest.mark.parametrize("rev", [None, "main", "v1.0", "refs/pr/3", "0123456789abcdef0123456789abcdef01234567"])
def test_valid_revisions(rev):
    assert revision_problem(rev) is None


def test_bundle_key():
    assert bundle_key("Qwen/Qwen3-8B") == "qwen--qwen3-8b" == bundle_key("qwen/QWEN3-8B")
