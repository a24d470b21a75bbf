"""safety.neutralise_formula: spreadsheet formula injection is defused, nothing else changes."""

import polars as pl

from reportgen.outputs.safety import neutralise_formula


def test_neutralises_every_trigger_and_only_text():
    df = pl.DataFrame({
        "s": ['=HYPERLINK("http://x","y")', "+1", "-2", "@SUM(A1)", "\tx", "\rx", "a=b", "", None, "'=ok"],
        "n": [-1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0],
    })
    out = neutralise_formula(df)
    assert out["s"].to_list() == ['\'=HYPERLINK("http://x","y")', "'+1", "'-2", "'@SUM(A1)", "'\tx", "'\rx",
                                  "a=b", "", None, "'=ok"]
    assert out["n"].to_list() == df["n"].to_list() and out.schema == df.schema


def test_no_text_columns_is_identity():
    df = pl.DataFrame({"x": [1, -2]})
    assert neutralise_formula(df).equals(df)
