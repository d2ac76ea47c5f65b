"""Smoke test of the speed benchmark: ``bench/speed.py --quick`` runs every section against the real
servers and writes its JSON report (structure only, not speed: this machine is shared)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from imgsearch.config import REPO_ROOT, process_environment

pytestmark = pytest.mark.integration

SECTIONS = ("machine", "config", "ingest", "assignment", "search", "freshness", "recall", "scale")


def run_bench(args: list[str], engines: dict[str, str], timeout_s: float) -> None:
    """A benchmark's ``--quick`` run in a subprocess on the test engines; its output if it fails."""
    env = {**process_environment(), **engines}
    for key in ("IMGSEARCH_TOPIC_PREFIX", "IMGSEARCH_APP_PREFIX", "IMGSEARCH_INDEX"):
        env.pop(key, None)  # the benchmarks isolate themselves
    proc = subprocess.run(
        [sys.executable, *args, "--quick"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout_s
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]


@pytest.mark.timeout(600)
def test_speed_bench_quick(engines: dict[str, str], tmp_path: Path) -> None:
    from imgsearch.datasets.icons import dataset_dir
    from jobs.train_heads import smoke_dataset

    # the icons-v1 set when it is built (scripts/setup_data.sh --icons), else the smoke slice that
    # scripts/test.sh always builds: the speed bench runs on every machine, never skipped
    images = dataset_dir() if (dataset_dir() / "labels.json").exists() else smoke_dataset()
    out = tmp_path / "speed.json"
    run_bench([str(REPO_ROOT / "bench" / "speed.py"), "--dataset", str(images), "--out", str(out)], engines, 570)
    res = json.loads(out.read_text())
    assert res["mode"] == "quick"
    for section in SECTIONS:
        assert section in res, section
    ing = res["ingest"]
    for key in ("bare", "pipeline_1_embedder", "pipeline_2_embedders"):
        assert ing[key]["images_per_s"] > 0
    assert ing["ratio_pipeline_1_to_bare"] > 0
    assert res["assignment"]["k100_d96_batch16_us_per_image"] > 0
    assert res["assignment"]["k100_d384_batch16_us_per_image"] > 0
    search = res["search"]
    for key in ("e2e_ms", "embed_ms", "knn_ms", "rank_ms", "kafka_hops_ms"):
        assert search["fixed_rate"][key]["p50"] is not None, key
        assert search["unloaded"][key]["p50"] is not None, key
    assert search["fixed_rate"]["ok"] > 0
    assert search["sweep"] and "max_sustainable_rate" in search
    assert res["freshness"]["trials"] > 0 and res["freshness"]["ok"] > 0
    assert res["freshness"]["freshness_ms"]["p99"] is not None
    for kind in ("text_queries", "image_queries_with_noise", "synthetic_mixture_queries", "all"):
        assert 0 <= res["recall"][kind]["recall_at_10_k50"] <= 1, kind
    assert res["recall"]["index_size"]["store_bytes"] > 0
    assert [s["vectors"] for s in res["scale"]] == res["config"]["scale_sizes"]
    for s in res["scale"]:
        assert s["ingest"]["docs_per_s"] > 0 and s["knn"]["wall_ms"]["p50"] is not None
    assert out.with_suffix(".md").exists()
    for name in ("latency-cdf", "latency-vs-rate", "scale"):
        assert (tmp_path / f"quick-bench-{name}.png").exists(), name


@pytest.mark.timeout(300)
def test_scale_bench_quick(engines: dict[str, str], tmp_path: Path) -> None:
    """``bench/scale.py --quick`` (the million-vector step's small version) on the real OpenSearch:
    the product's mapping loaded, searched against exact numpy search, measured, and cleaned up."""
    out = tmp_path / "scale.json"
    run_bench(["-m", "bench.scale", "--ef-search", "100", "--out", str(out)], engines, 270)
    res = json.loads(out.read_text())
    assert [s["vectors"] for s in res["sizes"]] == [2000, 5000]
    for s in res["sizes"]:
        assert s["ingest"]["docs_per_s"] > 0 and s["knn"]["wall_ms"]["p99"] is not None
        # at a few thousand vectors HNSW asked for 50 candidates finds (nearly) the exact top 10
        assert s["recall"]["recall_at_10_k50"] >= 0.95 and s["ef_search"][0]["recall"]["recall_at_10_k50"] >= 0.95
        assert s["index_size"]["bytes_per_vector"] > 4 * 384  # the vector file alone is the raw float32
        assert s["get_returns_vector"] and s["memory"]["heap_used_bytes"] > 0
    assert (tmp_path / "quick-bench-cost-vs-scale.png").exists() and out.with_suffix(".md").exists()
    made = "bench-scale-2000*,bench-scale-5000*"
    with urllib.request.urlopen(f"{engines['OPENSEARCH_URL']}/_cat/indices/{made}?format=json") as resp:
        assert json.loads(resp.read()) == []  # the bench deleted what it made
