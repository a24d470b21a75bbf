"""Issue 14 (6): user templates are sandboxed, confined to their directories, checked before work.

A template that does not parse is refused with exit 2 before any model is resolved; one that
fails while rendering keeps results.parquet/results.csv/errors.csv and reports the template
error (exit 2: the user's template, not our bug).
"""

import json

import pytest

from reportgen.cli import main

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
SECRET = "TOP-SECRET-FILE-CONTENT-42"


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))


def _run(tmp_path, files: dict, *, links: dict | None = None):
    tdir = tmp_path / "tpl"
    tdir.mkdir()
    for name, text in files.items():
        (tdir / name).write_text(text)
    for name, target in (links or {}).items():
        (tdir / name).symlink_to(target)
    job = tmp_path / "job.toml"
    job.write_text(f'name = "t"\nmodels = ["{MODEL}"]\ngpus = ["H100"]\nformats = ["parquet", "csv", "html"]\n'
                   f'templates = "{tdir}"\n')
    out = tmp_path / "out"
    return main(["run", str(job), "--out", str(out), "-q"]), out


def _all_output(out, capsys):
    text = capsys.readouterr().err
    if out.exists():
        for p in out.iterdir():
            text += p.read_bytes().decode("utf-8", "replace")
    return text


@pytest.mark.parametrize("expr", [
    "{{ fmt_num.__globals__['os'].getcwd() }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ fmt_num.__globals__ }}",
])
def test_sandbox_refuses_python_internals(tmp_path, capsys, expr):
    code, out = _run(tmp_path, {"report.html.j2": expr})
    assert code == 2
    text = _all_output(out, capsys)
    assert "<module 'os'" not in text and "subprocess" not in text and "<class 'object'>" not in text
    assert (out / "results.parquet").is_file() and (out / "results.csv").is_file()   # results kept
    assert not (out / "report.html").exists()
    assert "report.html was not written" in text


def test_symlink_out_of_the_template_dir_is_refused_before_work(tmp_path, capsys, monkeypatch):
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    import reportgen.run as run

    monkeypatch.setattr(run, "load_models", lambda *a, **k: pytest.fail("models resolved"))
    code, out = _run(tmp_path, {}, links={"report.css": secret})
    assert code == 2
    assert "links outside the template directory" in capsys.readouterr().err
    assert not out.exists()


def test_include_with_dotdot_never_reads_outside(tmp_path, capsys):
    (tmp_path / "secret.txt").write_text(SECRET)
    code, out = _run(tmp_path, {"report.html.j2": '{% include "../secret.txt" %}'})
    assert code == 2
    assert SECRET not in _all_output(out, capsys)


def test_template_that_does_not_parse_is_exit_2_before_any_estimation(tmp_path, capsys, monkeypatch):
    import reportgen.run as run

    monkeypatch.setattr(run, "load_models", lambda *a, **k: pytest.fail("models resolved"))
    code, out = _run(tmp_path, {"_errors.html.j2": "{% for x in %}broken"})
    assert code == 2
    err = capsys.readouterr().err
    assert "_errors.html.j2" in err and "does not parse" in err
    assert not out.exists()


def test_template_failing_while_rendering_keeps_tables(tmp_path, capsys):
    code, out = _run(tmp_path, {"_errors.html.j2": "{{ no_such_variable.attr }}"})
    assert code == 2
    assert {"results.parquet", "results.csv", "errors.csv", "manifest.json"} <= {p.name for p in out.iterdir()}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["exit_code"] == 2 and "no_such_variable" in manifest["report_errors"][0]
    assert "no_such_variable" in capsys.readouterr().err


def test_render_with_failing_template_is_exit_2(tmp_path, capsys):
    job = tmp_path / "job.toml"
    job.write_text(f'name = "t"\nmodels = ["{MODEL}"]\ngpus = ["H100"]\nformats = ["parquet", "csv"]\n')
    out = tmp_path / "out"
    assert main(["run", str(job), "--out", str(out), "-q"]) == 0
    tdir = tmp_path / "tpl"
    tdir.mkdir()
    (tdir / "report.html.j2").write_text("{{ ''.__class__.__base__.__subclasses__() }}")
    assert main(["render", str(out), "--format", "html", "--templates", str(tdir), "-q"]) == 2
    assert not (out / "report.html").exists()
