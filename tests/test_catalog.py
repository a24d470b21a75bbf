"""The GPU catalog: usable (CUDA-visible) memory, aliases, user overrides, unknown SKUs."""

import pytest

from reportgen.catalog import UnknownGpu, load_catalog


def test_usable_memory_is_what_vllm_sees_not_marketing():
    cat = load_catalog()
    assert cat.get("H100").usable_memory_gib == pytest.approx(79.19)   # vLLM v0.19 logs
    assert cat.get("H200").usable_memory_gib == pytest.approx(139.81)
    assert cat.get("MI300X").usable_memory_gib == pytest.approx(191.45)
    for sku in cat:
        if sku.memory_mib_reported:
            # CUDA sees less than nvidia-smi's total (driver/firmware reservations)
            assert sku.usable_memory_gib < sku.memory_mib_reported / 1024, sku.id
        assert sku.memory_source


@pytest.mark.parametrize("alias, sku", [("h100", "nvidia_h100_80gb_sxm"), ("H100-SXM", "nvidia_h100_80gb_sxm"),
                                        ("h100_sxm", "nvidia_h100_80gb_sxm"), ("rtx 4090", "nvidia_rtx_4090"),
                                        ("NVIDIA_L40S", "nvidia_l40s"), ("a100", "nvidia_a100_80gb_sxm")])
def test_aliases_are_case_insensitive(alias, sku):
    assert load_catalog().get(alias).id == sku


def test_default_job_skus_exist():
    cat = load_catalog()
    for g in ["H100", "H200", "B200", "A100", "L40S", "L4", "MI300X", "RTX4090"]:
        cat.get(g)


def test_unknown_sku_lists_close_matches():
    with pytest.raises(UnknownGpu) as e:
        load_catalog().get("H10O")
    assert "unknown GPU SKU 'H10O'" in str(e.value) and "nvidia_h100" in str(e.value)


def test_user_catalog_adds_and_overrides(tmp_path):
    f = tmp_path / "mine.csv"
    f.write_text("sku_id,name,usable_memory_gib,aliases,price_usd_hr\n"
                 "my_card,My Card,30.5,mc|MyCard,1.5\n"
                 "nvidia_h100_80gb_sxm,H100 (our price),79.19,,2.10\n")
    cat = load_catalog([f])
    assert cat.get("mycard").usable_memory_gib == 30.5
    assert cat.get("H100").price_usd_hr == 2.10      # override keeps working through the alias
    assert cat.version.endswith("+mine.csv")


def test_user_catalog_rejects_bad_rows(tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text("sku_id,name,usable_memory_gib\nx,X,lots\n")
    with pytest.raises(ValueError, match="line 2: usable_memory_gib must be a number"):
        load_catalog([f])
