"""swap_in: a built data set replaces the old one only once it is complete."""

from __future__ import annotations

from pathlib import Path

from imgsearch.datasets.files import swap_in


def _tree(path: Path, text: str) -> Path:
    path.mkdir(parents=True)
    (path / "labels.json").write_text(text)
    return path


def test_swap_in_creates_the_root_and_its_parents(tmp_path: Path) -> None:
    root = tmp_path / "a" / "b" / "set"
    swap_in(_tree(tmp_path / "staging", "new"), root)
    assert (root / "labels.json").read_text() == "new" and not (tmp_path / "staging").exists()


def test_swap_in_replaces_an_old_tree_and_leaves_no_copy(tmp_path: Path) -> None:
    root = _tree(tmp_path / "set", "old")
    _tree(tmp_path / "set.old", "stale")  # left over by an interrupted earlier swap
    swap_in(_tree(tmp_path / "staging", "new"), root)
    assert (root / "labels.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]
