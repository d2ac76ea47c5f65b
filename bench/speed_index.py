"""Speed benchmark: the pipeline's index padded to the search sections' size, and sections 5 and 6
straight on OpenSearch: k-NN recall@10 (HNSW vs exact script_score) with the index size, and scale
(bulk-ingest cost, k-NN latency and recall at growing numbers of synthetic vectors)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np

from bench.common import clustered_unit_vectors, say, stats
from bench.speed_env import Run


def knn_body(vec: list[float], k: int, size: int = 10) -> dict:
    return {"size": size, "_source": False, "query": {"knn": {"embedding": {"vector": vec, "k": k}}}}


def exact_body(vec: list[float], size: int = 10) -> dict:
    return {
        "size": size,
        "_source": False,
        "query": {
            "script_score": {
                "query": {"match_all": {}},
                "script": {
                    "source": "knn_score",
                    "lang": "knn",
                    "params": {"field": "embedding", "query_value": vec, "space_type": "cosinesimil"},
                },
            }
        },
    }


async def recall_at_10(client: Any, index: str, queries: np.ndarray, ks: tuple[int, ...] = (10, 50)) -> dict:
    """Tie-aware recall@10 of the HNSW k-NN query (asking k candidates) against exact search:
    an approximate hit counts if its score is at least the 10th exact score (duplicated vectors
    make id sets ambiguous). On OpenSearch 2.19 both scores are (1 + cos) / 2 for a lucene
    cosinesimil field; ``score_scale_check_max_abs_diff`` (same top-1 document, both scores) checks it."""
    per_k: dict[int, list[float]] = {k: [] for k in ks}
    exact_ms, score_check = [], []
    for q in queries:
        vec = [round(float(x), 6) for x in q]
        t0 = time.perf_counter()
        ex = (await client.search(index=index, body=exact_body(vec)))["hits"]["hits"]
        exact_ms.append((time.perf_counter() - t0) * 1000)
        if len(ex) < 10:
            continue
        ex_scores = [float(h["_score"]) for h in ex]
        for k in ks:
            ann = (await client.search(index=index, body=knn_body(vec, k)))["hits"]["hits"]
            ann_scores = [float(h["_score"]) for h in ann[:10]]
            good = sum(1 for c in ann_scores if c >= ex_scores[9] - 1e-5)
            per_k[k].append(min(good, 10) / 10)
            if ann and ann[0]["_id"] == ex[0]["_id"]:
                score_check.append(abs(ann_scores[0] - ex_scores[0]))
    if score_check and max(score_check) > 1e-3:
        raise RuntimeError(f"k-NN and exact scores are on different scales (diff {max(score_check):.3f})")
    return {
        **{f"recall_at_10_k{k}": round(float(np.mean(v)), 4) if v else None for k, v in per_k.items()},
        "queries": len(per_k[ks[0]]),
        "exact_ms": stats(exact_ms),
        "score_scale_check_max_abs_diff": round(max(score_check), 6) if score_check else None,
    }


async def index_size(client: Any, index: str) -> dict:
    cat = await client.cat.indices(index=index, format="json", bytes="b")
    st = await client.indices.stats(index=index, metric="segments", include_segment_file_sizes=True)
    seg = st["indices"][index]["primaries"]["segments"]
    files = {k: v["size_in_bytes"] for k, v in seg.get("file_sizes", {}).items()}
    vector_files = {k: v for k, v in files.items() if k in ("vec", "vex", "vem", "veq", "vemf", "vemq")}
    docs = int(cat[0]["docs.count"])
    per10k = 10_000 / max(1, docs)
    return {
        "docs": docs,
        "store_bytes": int(cat[0]["store.size"]),
        "segments": seg["count"],
        "segments_memory_bytes": seg.get("memory_in_bytes"),
        "file_sizes_bytes": files,
        "store_mb_per_10k": round(int(cat[0]["store.size"]) * per10k / 2**20, 2),
        "hnsw_and_vectors_mb_per_10k": round(sum(vector_files.values()) * per10k / 2**20, 2),
        "raw_float32_mb_per_10k": None,
    }


async def bulk_vectors(
    client: Any, index: str, vectors: np.ndarray, make_source: Any, chunk: int = 500, id_prefix: str = "syn"
) -> dict:
    """Bulk-index vectors; serialization is not timed, the bulk requests and the final refresh are."""
    t_index = took = 0.0
    for start in range(0, len(vectors), chunk):
        lines = []
        for i in range(start, min(start + chunk, len(vectors))):
            lines.append(json.dumps({"index": {"_index": index, "_id": f"{id_prefix}/{i}"}}))
            lines.append(json.dumps(make_source(i, np.round(vectors[i], 5).tolist())))
        body = "\n".join(lines) + "\n"
        t0 = time.perf_counter()
        resp = await client.bulk(body=body)
        t_index += time.perf_counter() - t0
        took += resp.get("took", 0)
        if resp.get("errors"):
            err = next(it["index"]["error"] for it in resp["items"] if it["index"].get("error"))
            raise RuntimeError(f"bulk error: {err}")
    t0 = time.perf_counter()
    await client.indices.refresh(index=index)
    t_refresh = time.perf_counter() - t0
    n = len(vectors)
    total = t_index + t_refresh
    return {
        "docs": n,
        "bulk_seconds": round(t_index, 3),
        "refresh_seconds": round(t_refresh, 3),
        "server_took_seconds": round(took / 1000, 3),
        "docs_per_s": round(n / total, 1),
        "us_per_doc": round(1e6 * total / n, 1),
    }


async def settle(client: Any, index: str, timeout_s: float = 300.0, quiet_checks: int = 3) -> float:
    """Wait until the index has no merge running (``_stats/merge`` current = 0 on ``quiet_checks``
    checks in a row, 1 s apart): HNSW graphs are rebuilt when segments merge, and a merge running on
    these 2 cores during a latency measurement is what the measurement would show. Seconds waited."""
    t0 = time.perf_counter()
    quiet = 0
    while quiet < quiet_checks and time.perf_counter() - t0 < timeout_s:
        stats = await client.indices.stats(index=index, metric="merge")
        current = stats["_all"]["total"]["merges"]["current"]
        quiet = quiet + 1 if current == 0 else 0
        await asyncio.sleep(1.0)
    return round(time.perf_counter() - t0, 1)


async def knn_latency(client: Any, index: str, queries: np.ndarray, k: int = 50, source: bool = True) -> dict:
    """Direct k-NN queries to OpenSearch the way the query worker asks (k candidates, filtered _source);
    with ``source=False`` the cluster id comes from doc values instead (no _source parsing)."""
    wall, took = [], []
    for i, q in enumerate(queries):
        body: dict[str, Any] = {
            "size": k,
            "query": {"knn": {"embedding": {"vector": [round(float(x), 6) for x in q], "k": k}}},
        }
        if source:
            body["_source"] = ["image_id", "cluster_id", "metadata"]
        else:
            body["_source"] = False
            body["docvalue_fields"] = ["cluster_id"]
        t0 = time.perf_counter()
        resp = await client.search(index=index, body=body)
        if i >= 10:  # the first ones warm the caches
            wall.append((time.perf_counter() - t0) * 1000)
            took.append(float(resp["took"]))
    return {"k": k, "wall_ms": stats(wall), "server_took_ms": stats(took)}


# ------------------------------------------------------------------------------------ the stages
async def pad_index(run: Run) -> None:
    """3. (set-up) The pipeline's index padded with synthetic vectors to ``cfg.target_docs`` documents,
    and the query texts of the image set."""
    embedder, style, centroids = run.embedder, run.style, run.centroids
    real = run.real_docs = await run.index.count()
    pad = run.pad = max(0, run.cfg.target_docs - real)
    say(f"3. search: padding the index from {real} to {real + pad} documents with synthetic vectors ...")
    syn, _ = clustered_unit_vectors(pad, embedder.dimension, seed=2)
    now = datetime.now(UTC).isoformat()
    crng = np.random.default_rng(3)
    cids = crng.integers(0, centroids.k, size=max(1, pad))

    def syn_source(i: int, vec: list[float]) -> dict:
        return {
            "image_id": f"syn/{i}", "embedding": vec, "style": None, "style_model_id": style.model_id,
            "cluster_id": int(cids[i]), "model_id": embedder.model_id, "centroid_version": centroids.version,
            "source_uri": None, "metadata": {"synthetic": "1"}, "indexed_at": now,
        }  # fmt: skip

    if pad:
        await bulk_vectors(run.os_client, run.index_name, syn, syn_source)
    waited = await settle(run.os_client, run.index_name)
    say(f"   background merges after the padding finished in {waited} s (searches are measured after them)")
    run.merge_wait_s = waited
    run.docs = await run.index.count()
    # icons-v1 rows name their subject's query; a styles set's rows their own text
    run.queries = sorted({str(r.get("query") or r["text"]) for r in run.rows})


async def recall(run: Run) -> None:
    """5. Recall@10 of text, noisy image and synthetic queries on the padded index, and its size."""
    cfg, embedder, queries = run.cfg, run.embedder, run.queries
    if run.search_vecs is None:
        raise RuntimeError("the ingest stage has not embedded the images")
    say(f"5. recall@10: {cfg.recall_queries} queries on the {run.docs}-doc index vs exact script_score ...")
    third = cfg.recall_queries // 3
    n_text = min(third, len(queries))  # every distinct subject query text, at most a third
    n_img = (cfg.recall_queries - n_text) // 2
    text_q = embedder.embed_texts(queries[:n_text]) if n_text else np.zeros((0, embedder.dimension), np.float32)
    qrng = np.random.default_rng(4)
    img_q = run.search_vecs[qrng.integers(0, len(run.search_vecs), size=n_img)]
    img_q = img_q + qrng.standard_normal(img_q.shape).astype(np.float32) * (0.3 / np.sqrt(embedder.dimension))
    img_q /= np.linalg.norm(img_q, axis=1, keepdims=True)
    n_syn = cfg.recall_queries - n_text - n_img
    syn_q, _ = clustered_unit_vectors(n_syn, embedder.dimension, seed=5)
    if run.pad:  # queries from the same mixture as the padding vectors
        _, centers = clustered_unit_vectors(1, embedder.dimension, seed=2)
        syn_q, _ = clustered_unit_vectors(n_syn, embedder.dimension, centers=centers, seed=5)
    client, name = run.os_client, run.index_name
    result = {
        "text_queries": await recall_at_10(client, name, np.asarray(text_q)),
        "image_queries_with_noise": await recall_at_10(client, name, img_q),
        "synthetic_mixture_queries": await recall_at_10(client, name, syn_q),
    }
    allq = np.vstack([np.asarray(text_q), img_q, syn_q])
    result["all"] = await recall_at_10(client, name, allq)
    size = await index_size(client, name)
    size["raw_float32_mb_per_10k"] = round(10_000 * embedder.dimension * 4 / 2**20, 2)
    run.res["recall"] = {**result, "target": 0.98, "index_size": size}
    say(
        f"   recall@10 (k=50, as the worker asks) {result['all']['recall_at_10_k50']}, (k=10) "
        f"{result['all']['recall_at_10_k10']}; store {size['store_mb_per_10k']} MB / 10k docs, "
        f"HNSW+vectors {size['hnsw_and_vectors_mb_per_10k']} MB / 10k"
    )


async def scale(run: Run) -> None:
    """6. Bulk-ingest cost, k-NN latency and recall at each of ``cfg.scale_sizes`` synthetic vectors."""
    from imgsearch.index.opensearch import mapping

    cfg, dim, client = run.cfg, run.embedder.dimension, run.os_client
    out = []
    for n in cfg.scale_sizes:
        name = f"{run.tag}-scale-{n}"
        run.created_indices.append(name)
        say(f"6. scale: {n} synthetic vectors (d={dim}) → {name} ...")
        await client.indices.create(index=name, body=mapping(dim, "bench-synthetic"))
        vecs, centers = clustered_unit_vectors(n, dim, seed=10)
        cl = np.random.default_rng(11).integers(0, 100, size=n)

        def scale_source(i: int, vec: list[float], cl: np.ndarray = cl) -> dict:
            return {"image_id": f"s/{i}", "embedding": vec, "cluster_id": int(cl[i]), "model_id": "bench-synthetic"}

        ing = await bulk_vectors(client, name, vecs, scale_source, id_prefix="s")
        q, _ = clustered_unit_vectors(cfg.scale_latency_queries + 10, dim, centers=centers, seed=12)
        lat = await knn_latency(client, name, q)
        lat_dv = await knn_latency(client, name, q, source=False)
        rec = await recall_at_10(client, name, q[: cfg.scale_recall_queries])
        sz = await index_size(client, name)
        out.append({"vectors": n, "ingest": ing, "knn": lat, "knn_docvalues": lat_dv, "recall": rec, "index_size": sz})
        say(
            f"   ingest {ing['docs_per_s']} docs/s ({ing['us_per_doc']} µs/doc); knn(k=50) p50 "
            f"{lat['wall_ms']['p50']} p95 {lat['wall_ms']['p95']} ms (doc values instead of _source: p50 "
            f"{lat_dv['wall_ms']['p50']}); recall@10 k50 {rec['recall_at_10_k50']} "
            f"k10 {rec['recall_at_10_k10']}; {sz['store_bytes'] / 2**20:.1f} MB on disk, {sz['segments']} segments"
        )
        with contextlib.suppress(Exception):
            await client.indices.delete(index=name)
    run.res["scale"] = out
