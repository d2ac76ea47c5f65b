"""Helpers shared by the benchmarks: progress output, percentiles, machine facts, synthetic vectors."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
_T0 = time.monotonic()


def say(msg: str) -> None:
    """One progress line, with the time since the benchmark started."""
    print(f"[bench {time.monotonic() - _T0:7.1f}s] {msg}", flush=True)


def pct(values: Iterable[float], ps: Sequence[float] = (50, 95, 99)) -> dict[str, float | None]:
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size == 0:
        return {f"p{p:g}": None for p in ps}
    return {f"p{p:g}": round(float(np.percentile(arr, p)), 3) for p in ps}


def stats(values: Iterable[float]) -> dict[str, float | int | None]:
    arr = np.asarray(list(values), dtype=np.float64)
    out: dict[str, float | int | None] = {"n": int(arr.size)}
    out.update(pct(arr))
    out["mean"] = round(float(arr.mean()), 3) if arr.size else None
    out["max"] = round(float(arr.max()), 3) if arr.size else None
    return out


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _pom_prop(pom: Path, prop: str) -> str | None:
    try:
        text = pom.read_text()
    except OSError:
        return None
    start = text.find(f"<{prop}>")
    if start < 0:
        return None
    end = text.find(f"</{prop}>", start)
    return text[start + len(prop) + 2 : end].strip()


def process_memory_kb(pid: int) -> dict[str, int]:
    """A process's VmRSS and VmHWM (its peak resident set) in kB, from /proc (empty if it is gone)."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def machine_facts(opensearch_url: str) -> dict[str, Any]:
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    os_version = None
    try:
        with urllib.request.urlopen(opensearch_url, timeout=5) as resp:
            os_version = json.loads(resp.read())["version"]["number"]
    except Exception:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gb": round(mem_kb / 2**20, 1),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "kafka": _pom_prop(REPO / "ops" / "kafka" / "pom.xml", "kafka.version"),
        "opensearch": os_version,
        "packages": {
            d: _version(d)
            for d in ("numpy", "onnxruntime", "faust-streaming", "aiokafka", "opensearch-py", "matplotlib")
        },
        "git_commit": commit,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def clustered_unit_vectors(
    n: int, dim: int, *, centers: np.ndarray | None = None, n_centers: int = 100, spread: float = 1.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors from a mixture of Gaussian blobs on the sphere (embeddings are clustered, not
    uniform): returns (vectors (n, dim) float32, the centers used). Within a blob the cosine to its
    center is about 1/sqrt(1 + spread**2) (0.7 for spread 1)."""
    rng = np.random.default_rng(seed)
    if centers is None:
        centers = rng.standard_normal((n_centers, dim)).astype(np.float32)
        centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    which = rng.integers(0, len(centers), size=n)
    noise = rng.standard_normal((n, dim)).astype(np.float32) * (spread / np.sqrt(dim))
    v = centers[which] + noise
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v.astype(np.float32), centers
