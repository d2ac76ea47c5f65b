"""The speed benchmark's configuration and isolation, without engines: its presets, its command
line, the settings and worker environment of an isolated run, and that bench/ never reads or
changes the process environment (issue 13: a run is configured by passing a config object)."""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path

from bench.speed_config import Config, parse_args
from bench.speed_env import isolated_settings, worker_env
from imgsearch.config import Settings

REPO = Path(__file__).resolve().parents[2]


def test_presets_keep_their_sizes() -> None:
    quick = asdict(Config.small())
    assert quick["quick"] is True
    assert (quick["bare_images"], quick["ingest_images"], quick["warm_images"], quick["k_clusters"]) == (32, 32, 8, 8)
    assert (quick["target_docs"], quick["fixed_duration_s"], quick["sweep_rates"]) == (1000, 3, [20, 40])
    assert (quick["fresh_trials"], quick["recall_queries"], quick["scale_sizes"]) == (3, 20, [500, 2000])
    full = asdict(Config.full())
    assert full["quick"] is False and full["ingest_images"] == 950 and full["target_docs"] == 10_000
    assert full["scale_sizes"] == [1000, 10_000, 100_000] and full["sweep_rates"][-1] == 200
    # the report's "config" section: the same keys in the same order as before the split
    assert list(full) == [
        "quick", "bare_images", "ingest_images", "warm_images", "partitions", "k_clusters", "target_docs",
        "fixed_rate", "fixed_duration_s", "sweep_rates", "sweep_duration_s", "fresh_trials", "recall_queries",
        "scale_sizes", "scale_latency_queries", "scale_recall_queries", "search_timeout_s", "slo_p50_ms",
        "slo_p99_ms", "dataset",
    ]  # fmt: skip


def test_command_line(tmp_path: Path) -> None:
    inv = parse_args(["--quick", "--dataset", str(tmp_path), "--out", str(tmp_path / "s.json")])
    assert inv.config == Config.small(tmp_path) and inv.out == tmp_path / "s.json"
    assert inv.plot_prefix == "quick-bench-" and not inv.copy_docs_img
    full = parse_args([])
    assert full.config == Config.full() and full.out.name == "speed.json" and full.copy_docs_img
    assert full.plot_prefix == "bench-" and not parse_args(["--no-docs-img"]).copy_docs_img


def test_isolated_run_settings_and_worker_env(tmp_path: Path) -> None:
    engines = {"KAFKA_BOOTSTRAP": "127.0.0.1:1", "OPENSEARCH_URL": "http://127.0.0.1:2"}
    s = isolated_settings(engines, "benchabc", tmp_path, Config.small().partitions, tmp_path / "imgs")
    assert (s.kafka_bootstrap, s.opensearch_url) == ("127.0.0.1:1", "http://127.0.0.1:2")
    assert (s.app_prefix, s.index_name, s.partitions) == ("benchabc", "benchabc-images", 2)
    assert s.data_dir == str(tmp_path / "data") and s.allowed_uri_roots == str(tmp_path / "imgs")
    env = worker_env(s)
    assert env["IMGSEARCH_TOPIC_PREFIX"] == "benchabc" and env["IMGSEARCH_APP_PREFIX"] == "benchabc"
    assert env["IMGSEARCH_INDEX"] == "benchabc-images" and env["IMGSEARCH_PARTITIONS"] == "2"
    assert env["KAFKA_BOOTSTRAP"] == "127.0.0.1:1" and env["IMGSEARCH_UNKNOWN_IMAGE_WAIT_S"] == "5.0"
    assert env["IMGSEARCH_LOG_LEVEL"] == "WARNING" and env["IMGSEARCH_DATA"] == str(tmp_path / "data")


def test_the_run_and_its_workers_name_the_same_topics(tmp_path: Path) -> None:
    engines = {"KAFKA_BOOTSTRAP": "127.0.0.1:1", "OPENSEARCH_URL": "http://127.0.0.1:2"}
    s = isolated_settings(engines, "benchxyz", tmp_path, Config.small().partitions, tmp_path / "imgs")
    assert s.topics.new_images().name == "benchxyz.images.new"
    assert all(t.name.startswith("benchxyz.") for t in s.topics.all_shared())
    worker = Settings.from_env(worker_env(s))  # what a worker process rebuilds
    assert [t.name for t in worker.topics.all_shared()] == [t.name for t in s.topics.all_shared()]
    assert Settings.from_env({}).topics.new_images().name == "imgsearch.images.new"  # the default is untouched


def test_bench_does_not_touch_the_environment() -> None:
    offenders = [
        f"{p.relative_to(REPO)}:{n}"
        for p in sorted((REPO / "bench").glob("*.py"))
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(r"\bos\.(environ|getenv|putenv)\b|\bgetenv\(", line)
    ]
    assert offenders == []
