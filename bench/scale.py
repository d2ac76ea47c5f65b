"""Issue 16, the million-vector step: the product's own index mapping (lucene HNSW m 16,
ef_construction 128, k-NN derived source) bulk-loaded with synthetic clustered 384-d unit vectors
at growing sizes, side by side in one run, on the real OpenSearch:

- bulk load: docs/s (refresh off during the load, as a bulk re-index does), then the wait until the
  background merges are done (HNSW graphs are rebuilt when segments merge);
- k-NN latency the way the query worker asks (k 50, the worker's `_source` fields), p50 / p99;
- recall@10 against exact numpy search on a sample of queries (k 50 as the worker asks, and k 10);
- the cost: store on disk (bytes per vector and × raw float32), the Lucene vector files (what must
  stay in the page cache), the JVM heap used after the load and the node's resident memory.

    .venv/bin/python -m bench.scale [--sizes 10000,100000,1000000] [--quick] [--out bench-results/scale.json]

Writes <out> (JSON), <out>.md and <out-dir>/bench-cost-vs-scale.png (copied to docs/img/ on a full
run). Not in CI: 1M vectors take ~30-40 min on this 2-core machine and ~5 GB of disk. Needs OpenSearch
(`bash scripts/engines.sh start opensearch`); the index it creates is deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
from opensearchpy import OpenSearch, helpers
from tqdm import tqdm

from bench.common import REPO, clustered_unit_vectors, machine_facts, process_memory_kb, say, stats
from imgsearch.config import Settings, process_environment
from imgsearch.connections import opensearch_kwargs
from imgsearch.index.opensearch import mapping

DIM = 384
WORKER_SOURCE = ["image_id", "cluster_id", "metadata"]
VECTOR_FILES = ("vec", "vex", "vem", "veq", "vemf", "vemq")


def node_memory(client: OpenSearch) -> dict[str, Any]:
    """JVM heap used / max and, when the node runs on this machine, its resident set (VmRSS)."""
    nodes = client.nodes.stats(metric="jvm,process")["nodes"]
    node = next(iter(nodes.values()))
    mem = node["jvm"]["mem"]
    info = client.nodes.info(node_id="_local", metric="process")["nodes"]
    pid = next(iter(info.values()))["process"].get("id")
    rss_kb = process_memory_kb(int(pid)).get("VmRSS") if pid else None
    rss = rss_kb * 1024 if rss_kb is not None else None
    return {"heap_used_bytes": mem["heap_used_in_bytes"], "heap_max_bytes": mem["heap_max_in_bytes"], "rss_bytes": rss}


def settle(client: OpenSearch, index: str, timeout_s: float = 3600.0) -> float:
    """Seconds until no merge has run on three checks in a row, 2 s apart."""
    t0, quiet = time.perf_counter(), 0
    while quiet < 3 and time.perf_counter() - t0 < timeout_s:
        current = client.indices.stats(index=index, metric="merge")["_all"]["total"]["merges"]["current"]
        quiet = quiet + 1 if current == 0 else 0
        time.sleep(2.0)
    return round(time.perf_counter() - t0, 1)


def load(client: OpenSearch, index: str, x: np.ndarray, clusters: np.ndarray) -> dict[str, Any]:
    """Bulk-index ``x`` (serialisation included in the time: it is part of a re-index's cost)."""
    body = mapping(DIM, "bench-synthetic")
    body["settings"]["index"]["refresh_interval"] = "-1"
    client.indices.create(index=index, body=body)
    actions = (
        {
            "_index": index,
            "_id": f"s/{i}",
            "image_id": f"s/{i}",
            "cluster_id": int(clusters[i]),
            "model_id": "bench-synthetic",
            "embedding": row.tolist(),
        }
        for i, row in enumerate(np.round(x, 5))  # one row at a time: 1M rows as Python lists would be ~12 GB
    )
    t0 = time.perf_counter()
    with tqdm(total=len(x), unit="doc", desc=f"bulk {len(x):,}", mininterval=10) as bar:
        # two requests in flight: the client serialises one chunk while the node indexes the other
        for ok, item in helpers.parallel_bulk(
            client, actions, thread_count=2, queue_size=2, chunk_size=1000, request_timeout=600
        ):
            if not ok:
                raise RuntimeError(f"bulk error: {item}")
            bar.update(1)
    client.indices.put_settings(index=index, body={"index": {"refresh_interval": "1s"}})
    client.indices.refresh(index=index, request_timeout=600)
    load_s = time.perf_counter() - t0
    merge_s = settle(client, index)
    return {"load_seconds": round(load_s, 1), "docs_per_s": round(len(x) / load_s, 1), "merge_wait_seconds": merge_s}


def knn_query(q: np.ndarray, k: int, ef: int | None) -> dict[str, Any]:
    """The k-NN clause; ``ef`` sets HNSW's ef_search (by default lucene searches with ef = k)."""
    clause: dict[str, Any] = {"vector": q.tolist(), "k": k}
    if ef is not None:
        clause["method_parameters"] = {"ef_search": ef}
    return {"knn": {"embedding": clause}}


def knn_latency(
    client: OpenSearch, index: str, queries: np.ndarray, k: int = 50, ef: int | None = None
) -> dict[str, Any]:
    wall, took = [], []
    for i, q in enumerate(queries):
        body = {"size": k, "_source": WORKER_SOURCE, "query": knn_query(q, k, ef)}
        t0 = time.perf_counter()
        resp = client.search(index=index, body=body)
        if i >= 10:  # the first ones warm the caches
            wall.append((time.perf_counter() - t0) * 1000)
            took.append(float(resp["took"]))
    return {"k": k, "wall_ms": stats(wall), "server_took_ms": stats(took)}


def recall(client: OpenSearch, index: str, x: np.ndarray, queries: np.ndarray, ef: int | None = None) -> dict[str, Any]:
    """recall@10 of the k-NN query (k 50 and k 10) against exact search over the vectors as sent."""
    xr = np.round(x, 5)
    exacts = [set(np.argpartition(-(xr @ q), 10)[:10].tolist()) for q in queries]
    out: dict[str, Any] = {}
    for k in (50, 10):
        got = []
        for q, exact in zip(queries, exacts, strict=True):
            body = {"size": 10, "_source": False, "query": knn_query(q, k, ef)}
            hits = client.search(index=index, body=body)["hits"]["hits"]
            got.append(len(exact & {int(h["_id"].split("/")[1]) for h in hits}) / 10)
        out[f"recall_at_10_k{k}"] = round(float(np.mean(got)), 4)
    out["queries"] = len(queries)
    return out


def store(client: OpenSearch, index: str, n: int) -> dict[str, Any]:
    client.indices.flush(index=index)
    st = client.indices.stats(index=index, metric="store,segments", include_segment_file_sizes=True)
    prim = st["indices"][index]["primaries"]
    files = {k: v["size_in_bytes"] for k, v in prim["segments"].get("file_sizes", {}).items()}
    store_b = prim["store"]["size_in_bytes"]
    vec_b = sum(v for k, v in files.items() if k in VECTOR_FILES)
    return {
        "store_bytes": store_b,
        "bytes_per_vector": round(store_b / n),
        "x_raw_float32": round(store_b / n / (4 * DIM), 2),
        "vector_files_bytes": vec_b,
        "segments": prim["segments"]["count"],
    }


def one_size(client: OpenSearch, n: int, n_latency: int, n_recall: int, efs: list[int]) -> dict[str, Any]:
    index = f"bench-scale-{n}"
    client.indices.delete(index=index, ignore_unavailable=True)
    say(f"scale: {n:,} vectors (d={DIM}) -> {index}")
    x, centers = clustered_unit_vectors(n, DIM, seed=10)
    clusters = np.random.default_rng(11).integers(0, 100, size=n)
    try:
        ld = load(client, index, x, clusters)
        say(
            f"   loaded at {ld['docs_per_s']} docs/s in {ld['load_seconds']} s; "
            f"merges done {ld['merge_wait_seconds']} s later"
        )
        q, _ = clustered_unit_vectors(max(n_latency + 10, n_recall), DIM, centers=centers, seed=12)
        q = np.round(q, 6)
        lat = knn_latency(client, index, q[: n_latency + 10])
        rec = recall(client, index, x, q[:n_recall])
        ef_rows: list[dict[str, Any]] = []
        for ef in efs:  # the same queries with a larger ef_search: what recall costs in latency
            ef_rows.append(
                {
                    "ef_search": ef,
                    "knn": knn_latency(client, index, q[: n_latency + 10], ef=ef),
                    "recall": recall(client, index, x, q[:n_recall], ef=ef),
                }
            )
            e = ef_rows[-1]
            say(
                f"   ef_search {ef}: p50 {e['knn']['wall_ms']['p50']} ms, recall@10"
                f" k50 {e['recall']['recall_at_10_k50']}"
            )
        size = store(client, index, n)
        got = client.get(index=index, id="s/5")["_source"].get("embedding")
        mem = node_memory(client)
    finally:
        client.indices.delete(index=index, ignore_unavailable=True)
    row = {
        "vectors": n,
        "ingest": ld,
        "knn": lat,
        "recall": rec,
        "ef_search": ef_rows,
        "index_size": size,
        "memory": mem,
        "get_returns_vector": got is not None,
    }
    say(
        f"   k-NN p50 {lat['wall_ms']['p50']} p99 {lat['wall_ms']['p99']} ms; recall@10 k50 {rec['recall_at_10_k50']}"
        f" k10 {rec['recall_at_10_k10']}; store {size['bytes_per_vector']} B/vector ({size['x_raw_float32']}x raw),"
        f" {size['segments']} segments; heap {mem['heap_used_bytes'] / 2**20:.0f} MB"
    )
    return row


def markdown(res: dict[str, Any]) -> str:
    lines = [
        "| vectors | bulk docs/s | merge wait s | k-NN p50 / p99 ms (k 50) | recall@10 k 50 / k 10 "
        "| store B/vector (× raw) | vector files MB | segments | heap used MB | node RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["sizes"]:
        m, s = r["memory"], r["index_size"]
        rss = "" if m["rss_bytes"] is None else f"{m['rss_bytes'] / 2**20:.0f}"
        lines.append(
            f"| {r['vectors']:,} | {r['ingest']['docs_per_s']} | {r['ingest']['merge_wait_seconds']} | "
            f"{r['knn']['wall_ms']['p50']} / {r['knn']['wall_ms']['p99']} | "
            f"{r['recall']['recall_at_10_k50']} / {r['recall']['recall_at_10_k10']} | "
            f"{s['bytes_per_vector']:,} ({s['x_raw_float32']}×) | {s['vector_files_bytes'] / 2**20:.0f} | "
            f"{s['segments']} | {m['heap_used_bytes'] / 2**20:.0f} | {rss} |"
        )
    efs = [(r["vectors"], e) for r in res["sizes"] for e in r.get("ef_search", [])]
    if efs:
        lines += [
            "",
            "| vectors | ef_search | k-NN p50 / p99 ms (k 50) | recall@10 k 50 / k 10 |",
            "|---|---|---|---|",
        ]
        for n, e in efs:
            lines.append(
                f"| {n:,} | {e['ef_search']} | {e['knn']['wall_ms']['p50']} / {e['knn']['wall_ms']['p99']} | "
                f"{e['recall']['recall_at_10_k50']} / {e['recall']['recall_at_10_k10']} |"
            )
    return "\n".join(lines) + "\n"


def plot(res: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = res["sizes"]
    ns = [r["vectors"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    gb = 2**30
    axes[0].plot(ns, [r["index_size"]["store_bytes"] / gb for r in rows], marker="o", label="store on disk")
    axes[0].plot(
        ns, [r["index_size"]["vector_files_bytes"] / gb for r in rows], marker="o", label="vector files (page cache)"
    )
    axes[0].plot(ns, [n * DIM * 4 / gb for n in ns], ls=":", color="grey", label="raw float32")
    axes[0].plot(ns, [r["memory"]["heap_used_bytes"] / gb for r in rows], marker="x", label="JVM heap used")
    axes[0].set_ylabel("GB")
    axes[0].set_title("what it costs")
    axes[1].plot(ns, [r["knn"]["wall_ms"]["p50"] for r in rows], marker="o", label="p50")
    axes[1].plot(ns, [r["knn"]["wall_ms"]["p99"] for r in rows], marker="o", label="p99")
    axes[1].set_ylabel("k-NN latency (ms, k 50)")
    axes[1].set_title("what a search waits")
    axes[2].plot(ns, [r["recall"]["recall_at_10_k50"] for r in rows], marker="o", label="k 50 (the worker)")
    axes[2].plot(ns, [r["recall"]["recall_at_10_k10"] for r in rows], marker="o", label="k 10")
    axes[2].axhline(0.95, color="grey", ls=":", label="0.95")
    axes[2].set_ylabel("recall@10 vs exact")
    axes[2].set_title("what it finds")
    for a in axes:
        a.set_xscale("log")
        a.set_xlabel("indexed vectors (d 384)")
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    fig.suptitle("OpenSearch k-NN (lucene HNSW, derived source) vs scale, one run on 2 cores")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated vector counts")
    ap.add_argument("--quick", action="store_true", help="2,000 and 5,000 vectors (seconds)")
    ap.add_argument("--latency-queries", type=int, default=200)
    ap.add_argument("--recall-queries", type=int, default=100)
    ap.add_argument(
        "--ef-search", default="", help="comma-separated ef_search values to measure as well (e.g. 100,200)"
    )
    ap.add_argument("--no-docs-img", action="store_true", help="do not copy the plot to docs/img/")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    sizes = [2000, 5000] if args.quick else [int(s) for s in args.sizes.split(",")]
    out = args.out or REPO / "bench-results" / ("scale-quick.json" if args.quick else "scale.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = Settings.from_env(process_environment())
    client = OpenSearch(hosts=[settings.opensearch_url], timeout=600, **opensearch_kwargs(settings))
    res: dict[str, Any] = {"machine": machine_facts(settings.opensearch_url), "sizes": []}
    try:
        res["git"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        res["git"] = None
    for n in sizes:
        efs = [int(e) for e in args.ef_search.split(",") if e]
        res["sizes"].append(one_size(client, n, args.latency_queries, args.recall_queries, efs))
        out.write_text(json.dumps(res, indent=1))  # each size as soon as it is measured
    md = out.with_suffix(".md")
    md.write_text(markdown(res))
    png = out.parent / ("quick-bench-cost-vs-scale.png" if args.quick else "bench-cost-vs-scale.png")
    plot(res, png)
    if not args.quick and not args.no_docs_img:
        shutil.copy(png, REPO / "docs" / "img" / png.name)
    print(md.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
