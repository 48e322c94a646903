"""One reference, one commit: a changed tree is refused, or every result marked dirty."""

import subprocess
from pathlib import Path

import pytest

from bench.common import provenance


def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    for args in (["init", "-q"], ["config", "user.email", "t@t"], ["config", "user.name", "t"]):
        subprocess.run(["git", *args], cwd=root, check=True)
    (root / "bench.py").write_text("x = 1\n")
    (root / "results").mkdir()
    subprocess.run(["git", "add", "."], cwd=root, check=True)
    subprocess.run(["git", "commit", "-qm", "one"], cwd=root, check=True)
    return root


def test_a_clean_tree_passes_and_results_do_not_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = repo(tmp_path)
    (root / "results" / "run.json").write_text("{}")  # what a run writes is not code
    assert provenance.main([str(root)]) == 0
    assert "reference from commit" in capsys.readouterr().err


@pytest.mark.parametrize("change", ["modified", "untracked"])
def test_a_changed_tree_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: str
) -> None:
    root = repo(tmp_path)
    if change == "modified":
        (root / "bench.py").write_text("x = 2\n")
    else:
        (root / "new.py").write_text("")
    assert provenance.main([str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "commit first" in err


def test_a_changed_tree_may_go_on_marked_dirty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = repo(tmp_path)
    (root / "bench.py").write_text("x = 2\n")
    monkeypatch.setenv(provenance.ALLOW_ENV, "1")
    assert provenance.main([str(root)]) == 0
    assert "marked git_dirty" in capsys.readouterr().err
