"""Run directories: names that cannot escape, atomic creation, never overwriting a finished run."""

from datetime import datetime, timezone

import pytest

from reportgen.outputs.rundir import AtomicDir, default_run_dir, safe_name


@pytest.mark.parametrize("name, safe", [("weekly fleet", "weekly-fleet"), ("../../etc/passwd", "etc-passwd"),
                                        ("/abs/path", "abs-path"), ("..", "job"), (".hidden", "hidden"),
                                        ("a" * 200, "a" * 80), ("Qwen/Qwen3-8B", "Qwen-Qwen3-8B")])
def test_job_names_become_one_harmless_path_component(name, safe):
    assert safe_name(name) == safe


def test_default_run_dir_is_job_then_utc_time(tmp_path):
    when = datetime(2026, 11, 26, 2, 3, 4, tzinfo=timezone.utc)
    assert default_run_dir(tmp_path, "x", when) == tmp_path / "x" / "20261126T020304Z"
    # an unsafe name is sanitised plus a hash of the exact name (issue 14: unique history keys)
    assert default_run_dir(tmp_path, "../x", when).parent.name.startswith("x-")


def test_atomic_dir_appears_only_when_complete(tmp_path):
    final = tmp_path / "runs" / "r1"
    with pytest.raises(RuntimeError):
        with AtomicDir(final) as d:
            (d.tmp / "results.csv").write_text("partial")
            raise RuntimeError("killed half-way")
    assert not final.exists() and list((tmp_path / "runs").iterdir()) == []
    with AtomicDir(final) as d:
        (d.tmp / "results.csv").write_text("done")
    assert d.final == final and (final / "results.csv").read_text() == "done"
    with AtomicDir(final) as d2:                       # same name again: never overwrites
        (d2.tmp / "results.csv").write_text("second")
    assert d2.final == final.with_name("r1-2")
    assert (final / "results.csv").read_text() == "done"
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["r1", "r1-2"]


def test_signal_exit_removes_a_temporary_the_with_block_did_not(tmp_path):
    """The CLI's SIGINT / SIGTERM exits call remove_live_temporaries: a temporary directory whose
    ``__exit__`` never ran (or whose rmtree left it behind) is removed there, and a renamed run is not."""
    from reportgen.outputs.rundir import AtomicDir, remove_live_temporaries

    stuck = AtomicDir(tmp_path / "a").__enter__()           # entered, never exited
    (stuck.tmp / "results.csv").write_text("x")
    with AtomicDir(tmp_path / "b") as done:
        (done.tmp / "results.csv").write_text("y")
    remove_live_temporaries()
    assert not stuck.tmp.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
    assert (tmp_path / "b" / "results.csv").read_text() == "y"
