"""The demo and the workers run on the runtime lock alone (requirements.lock): no module of the product
may import, at import time, a package that only the dev lock (requirements-dev.lock: test tools) holds.
A merge once put ``from docker.types import Ulimit`` at the top of consumers/runner.py and the demo
failed on a fresh machine while the whole suite, on the dev lock, passed."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import packages_distributions

from imgsearch.config import REPO_ROOT

PRODUCT = ("imgsearch", "streams", "producers", "consumers", "jobs", "apps", "schemas")


def locked(name: str) -> set[str]:
    text = (REPO_ROOT / name).read_text()
    return {re.sub(r"[-_.]+", "-", m.lower()) for m in re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", text, re.M)}


def dev_only_modules() -> set[str]:
    dev_only = locked("requirements-dev.lock") - locked("requirements.lock")
    modules = set()
    for module, dists in packages_distributions().items():
        if module.isidentifier() and all(re.sub(r"[-_.]+", "-", d.lower()) in dev_only for d in dists):
            modules.add(module)
    return modules


def test_the_locks_differ_by_test_tools_only():
    dev_only = locked("requirements-dev.lock") - locked("requirements.lock")
    assert {"pytest", "mypy", "ruff", "docker", "testcontainers"} <= dev_only
    assert locked("requirements.lock") <= locked("requirements-dev.lock")


def test_every_product_module_imports_without_the_dev_only_packages():
    blocked = sorted(dev_only_modules())
    assert "docker" in blocked and "pytest" in blocked
    modules = sorted(
        ".".join(p.relative_to(REPO_ROOT).with_suffix("").parts)
        for pkg in PRODUCT
        for p in (REPO_ROOT / pkg).rglob("*.py")
        if p.name != "__main__.py"
    )
    code = f"""
import importlib, importlib.abc, sys
BLOCKED = set({blocked!r})
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (dev lock only)", name=name)
        return None
for m in list(sys.modules):
    if m.split(".")[0] in BLOCKED:
        del sys.modules[m]
sys.meta_path.insert(0, Block())
failed = []
for m in {modules!r}:
    try:
        importlib.import_module(m)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in BLOCKED:
            failed.append(f"{{m}}: {{exc}}")
print("\\n".join(failed))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "", "imports of dev-only packages at import time:\n" + out.stdout
