"""scripts/setup_models.sh's first step asks "are the artifacts there?" with any python3, before the
project's environment exists: that check must run on the standard library alone (``python -S``: no
site-packages, so no numpy and no pydantic) and answer without a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from imgsearch.embedding.conse import default_artifact_dir

REPO = Path(__file__).resolve().parents[2]


def check(out_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-S", "-m", "imgsearch.embedding.model_build", "--variant", "lite0", "--check",
         "--out-dir", str(out_dir)],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_the_up_to_date_check_needs_only_the_standard_library(tmp_path: Path) -> None:
    missing = check(tmp_path / "nothing-here")
    assert missing.returncode == 1 and "Traceback" not in missing.stderr, missing.stderr
    present = check(default_artifact_dir())  # built by the test command's set-up (scripts/setup_models.sh)
    assert present.returncode == 0 and "Traceback" not in present.stderr, present.stderr


def test_the_script_gives_the_check_its_directory() -> None:
    script = (REPO / "scripts/setup_models.sh").read_text()
    checks = [line for line in script.splitlines() if "model_build" in line and "--check" in line]
    assert len(checks) == 2 and all('--out-dir "$OUT"' in line for line in checks), checks
