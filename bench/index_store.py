"""Issue 16, index store: bytes on disk per vector for mapping variants of the same 384-d lucene HNSW
field, after a flush and a force-merge to one segment, with recall@10 against exact (numpy) search and
whether a GET still returns the vector (similar_to, MMR and re-clustering read it back).

Variants: ``source`` (today's mapping: the vector in ``_source``), ``excludes`` (``_source.excludes``),
``derived`` (``index.knn.derived_source.enabled``: the vector is rebuilt from the vector files when read),
``derived_sq7`` (derived, plus lucene's 7-bit scalar quantisation). faiss (fp16) cannot be tried on the
local engines: the k-NN plugin zip on Maven Central carries no native libraries, and a faiss index stops
the node (UnsatisfiedLinkError).

    python -m bench.index_store [--n 20000] [--variants source,derived]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
from opensearchpy import OpenSearch, helpers

from bench.common import clustered_unit_vectors, say
from bench.speed_index import knn_body
from imgsearch.config import Settings, process_environment
from imgsearch.connections import opensearch_kwargs

DIM = 384


def _method(encoder: dict[str, Any] | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"m": 16, "ef_construction": 128}
    if encoder:
        params["encoder"] = encoder
    return {"name": "hnsw", "space_type": "cosinesimil", "engine": "lucene", "parameters": params}


SQ7 = {"name": "sq", "parameters": {"bits": 7}}
DERIVED = {"knn.derived_source.enabled": True}
VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]] = {
    "source": ({}, _method(), None),
    "excludes": ({}, _method(), {"excludes": ["embedding"]}),
    "derived": (DERIVED, _method(), None),
    "derived_sq7": (DERIVED, _method(SQ7), None),
}


def measure(client: OpenSearch, name: str, x: np.ndarray, queries: np.ndarray) -> dict[str, Any]:
    extra, method, source = VARIANTS[name]
    index = f"bench-store-{name.replace('_', '-')}"
    client.indices.delete(index=index, ignore_unavailable=True)
    mappings: dict[str, Any] = {
        "properties": {
            "image_id": {"type": "keyword"},
            "cluster_id": {"type": "integer"},
            "embedding": {"type": "knn_vector", "dimension": DIM, "method": method},
        }
    }
    if source:
        mappings["_source"] = source
    settings = {
        "index": {"knn": True, "number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "-1", **extra}
    }
    client.indices.create(index=index, body={"settings": settings, "mappings": mappings})
    t0 = time.perf_counter()
    actions = (
        {
            "_index": index,
            "_id": str(i),
            "image_id": str(i),
            "cluster_id": i % 100,
            "embedding": [round(float(v), 7) for v in row],
        }
        for i, row in enumerate(x)
    )
    helpers.bulk(client, actions, chunk_size=1000, request_timeout=300)
    client.indices.refresh(index=index)
    client.indices.flush(index=index, force=True)
    client.indices.forcemerge(index=index, max_num_segments=1, request_timeout=900)
    client.indices.flush(index=index, force=True)
    client.indices.refresh(index=index)
    load_s = time.perf_counter() - t0
    store = client.indices.stats(index=index, metric="store")["indices"][index]["primaries"]["store"]["size_in_bytes"]
    got = client.get(index=index, id="5").get("_source", {}).get("embedding")
    recalls, lat = [], []
    for q in queries:
        exact = set(np.argsort(-(x @ q))[:10].tolist())
        t = time.perf_counter()
        hits = client.search(index=index, body=knn_body(q.tolist(), 10))["hits"]["hits"]
        lat.append((time.perf_counter() - t) * 1000)
        recalls.append(len(exact & {int(h["_id"]) for h in hits}) / 10)
    client.indices.delete(index=index)
    n = len(x)
    return {
        "variant": name,
        "n": n,
        "bytes_per_vector": round(store / n),
        "x_raw_float32": round(store / n / (4 * DIM), 2),
        "load_s": round(load_s, 1),
        "get_returns_vector": got is not None,
        "get_max_abs_err": None if got is None else float(np.abs(np.asarray(got) - x[5]).max()),
        "recall_at_10": round(float(np.mean(recalls)), 3),
        "knn_p50_ms": round(float(np.median(lat)), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    args = ap.parse_args()
    settings = Settings.from_env(process_environment())
    client = OpenSearch(hosts=[settings.opensearch_url], timeout=300, **opensearch_kwargs(settings))
    x, centers = clustered_unit_vectors(args.n, DIM, seed=0)
    queries, _ = clustered_unit_vectors(100, DIM, centers=centers, seed=1)
    for name in args.variants.split(","):
        say(f"index store: {name}, {args.n} vectors")
        print(json.dumps(measure(client, name, x, queries)), flush=True)


if __name__ == "__main__":
    main()
