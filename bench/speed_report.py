"""The speed benchmark's report: the JSON, a Markdown summary with its tables, and the PNG plots."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from bench.common import REPO, say
from bench.speed_config import Invocation


def verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("met" if ok else "MISSED")


def markdown(res: dict) -> str:
    m, cfg = res["machine"], res["config"]
    ing, asg, se, fr, rc = res["ingest"], res["assignment"], res["search"], res["freshness"], res["recall"]
    fx = se["fixed_rate"]
    lines = [
        f"# Speed benchmark ({res['mode']} run)",
        "",
        f"{m['nproc']} CPUs ({m['cpu']}), {m['ram_gb']} GB RAM, load average at start {m['loadavg_at_start']}, at end "
        f"{m.get('loadavg_at_end')}; "
        f"Python {m['python']}, Kafka {m['kafka']}, OpenSearch {m['opensearch']} (k-NN, lucene HNSW m=16 "
        f"ef_construction=128), onnxruntime {m['packages']['onnxruntime']}, faust-streaming "
        f"{m['packages']['faust-streaming']}; commit {m['git_commit']}, {m['started_at']}. Kafka, OpenSearch, the "
        "workers and the load generator all share these CPUs.",
        "",
        "| what | measured | target |",
        "|---|---|---|",
        f"| bare embedder (ConSE + style, batch {ing['bare']['batch']}, in-process), mean of before / after "
        f"the pipeline runs | {ing['bare']['images_per_s']} images/s ({ing['bare']['images_per_s_before']} / "
        f"{ing['bare']['images_per_s_after']}) | |",
        f"| pipeline, 1 embedding worker (publish → searchable) | {ing['pipeline_1_embedder']['images_per_s']} "
        f"images/s = **{ing['ratio_pipeline_1_to_bare']}×** bare | ≥ 0.9× "
        f"({verdict(ing['ratio_pipeline_1_to_bare'] >= 0.9)}) |",
        f"| pipeline, 2 embedding workers | {ing['pipeline_2_embedders']['images_per_s']} images/s = "
        f"{ing['speedup_2_vs_1_embedders']}× one worker | |",
        f"| pipeline, 2 embedding workers, {ing['pipeline_2_embedders_shared_threads']['threads_per_worker']} "
        f"ONNX thread(s) each (IMGSEARCH_EMBED_THREADS) | "
        f"{ing['pipeline_2_embedders_shared_threads']['images_per_s']} images/s = "
        f"**{ing['speedup_2_shared_vs_1_embedders']}×** one worker | ≥ 1× "
        f"({verdict(ing['speedup_2_shared_vs_1_embedders'] >= 1.0)}) |",
        f"| images per measured phase; bare decode cost | {ing['pipeline_1_embedder']['images']}; "
        f"{ing['bare']['decode_ms_per_image']} ms/image | |",
        f"| nearest-centroid assignment k=100, d=96 / d=384 (batch 16) | {asg['k100_d96_batch16_us_per_image']} / "
        f"{asg['k100_d384_batch16_us_per_image']} µs per image = {100 * asg['assignment_share_of_embedding']:.3f} % "
        f"of embedding ({asg['embedding_us_per_image'] / 1000:.1f} ms) | negligible "
        f"({verdict(asg['assignment_share_of_embedding'] < 0.01)}) |",
        f"| search e2e over Kafka at {fx['offered_rate']:g} req/s, {se['indexed_docs']} docs: p50 / p95 / p99 | "
        f"{fx['e2e_ms']['p50']} / {fx['e2e_ms']['p95']} / {fx['e2e_ms']['p99']} ms | p50 ≤ {cfg['slo_p50_ms']:g} "
        f"({verdict(fx['e2e_ms']['p50'] is not None and fx['e2e_ms']['p50'] <= cfg['slo_p50_ms'])}), p99 ≤ "
        f"{cfg['slo_p99_ms']:g} "
        f"({verdict(fx['e2e_ms']['p99'] is not None and fx['e2e_ms']['p99'] <= cfg['slo_p99_ms'])}) |",
        f"| — of which embed / knn / rank (p50) | {fx['embed_ms']['p50']} / {fx['knn_ms']['p50']} / "
        f"{fx['rank_ms']['p50']} ms | |",
        f"| — of which Kafka hops + client (e2e − worker time), p50 / p99 | {fx['kafka_hops_ms']['p50']} / "
        f"{fx['kafka_hops_ms']['p99']} ms | |",
        f"| unloaded search (one at a time): e2e p50 / p99; embed / knn / hops p50 | "
        f"{se['unloaded']['e2e_ms']['p50']} / {se['unloaded']['e2e_ms']['p99']} ms; "
        f"{se['unloaded']['embed_ms']['p50']} / "
        f"{se['unloaded']['knn_ms']['p50']} / {se['unloaded']['kafka_hops_ms']['p50']} ms | |",
        f"| max sustainable search rate (one query worker, {se['query_concurrency']} requests in flight) | "
        f"{se['max_sustainable_rate']:g} req/s (p99 ≤ {cfg['slo_p99_ms']:g} ms up to "
        f"{se['max_rate_meeting_p99_slo']:g} req/s) | |",
        f"| bare engines' limit: embed + k-NN + blend in one process, closed loop (best of 1/2/4/8 in flight) | "
        f"{se['bare_engines']['limit_rate']:g} req/s at {se['bare_engines']['at_concurrency']} in flight | |",
        f"| product rate with p99 ≤ {cfg['slo_p99_ms']:g} ms / bare engines' limit | **{se['ratio_to_bare']}×** | "
        f"≥ 0.7× ({verdict(None if se['ratio_to_bare'] is None else se['ratio_to_bare'] >= 0.7)}) |",
        f"| freshness: interaction → reflecting reply, p50 / p99 ({fr['ok']}/{fr['trials']} trials) | "
        f"{fr['freshness_ms']['p50']} / {fr['freshness_ms']['p99']} ms | p99 ≤ 1000 "
        f"({verdict(fr['freshness_ms']['p99'] is not None and fr['freshness_ms']['p99'] <= 1000)}) |",
        f"| k-NN recall@10, HNSW (k=50 as the worker asks / k=10) vs exact, {rc['all']['queries']} queries | "
        f"{rc['all']['recall_at_10_k50']} / {rc['all']['recall_at_10_k10']} | ≥ 0.98 "
        f"({verdict(rc['all']['recall_at_10_k50'] is not None and rc['all']['recall_at_10_k50'] >= 0.98)}) |",
        f"| index size per 10k vectors (d={se['dimension']}): store (`_cat/indices`) / "
        f"HNSW graph + vectors (.vec/.vex/.vem) / raw float32 | {rc['index_size']['store_mb_per_10k']} / "
        f"{rc['index_size']['hnsw_and_vectors_mb_per_10k']} / {rc['index_size']['raw_float32_mb_per_10k']} MB | |",
        "",
        "## Search latency vs offered rate (open loop, one query worker)",
        "",
        "| offered req/s | achieved req/s | p50 ms | p95 ms | p99 ms | errors | embed p50 | knn p50 | hops p50 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in se["sweep"]:
        lines.append(
            f"| {s['offered_rate']:g} | {s['achieved_rate']} | {s['e2e_ms']['p50']} | {s['e2e_ms']['p95']} | "
            f"{s['e2e_ms']['p99']} | {s['error_rate']:.1%} | {s['embed_ms']['p50']} | {s['knn_ms']['p50']} | "
            f"{s['kafka_hops_ms']['p50']} |"
        )
    lines += [
        "",
        "## Recall@10 by query kind (tie-aware, vs exact `script_score` / `knn_score`, cosinesimil)",
        "",
        "| queries | n | recall@10 (k=50) | recall@10 (k=10) | exact search p50 ms |",
        "|---|---|---|---|---|",
    ]
    for kind in ("text_queries", "image_queries_with_noise", "synthetic_mixture_queries", "all"):
        r = rc[kind]
        lines.append(
            f"| {kind} | {r['queries']} | {r['recall_at_10_k50']} | {r['recall_at_10_k10']} | {r['exact_ms']['p50']} |"
        )
    lines += [
        "",
        "## Scale (synthetic clustered unit vectors, bulk-loaded, direct k-NN queries to OpenSearch)",
        "",
        "| vectors | bulk ingest docs/s | µs/doc | k-NN (k=50, _source as the worker) p50 / p95 ms "
        "| server took p50 ms | k-NN with doc values p50 ms | recall@10 k=50 / k=10 | store MB | segments |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in res["scale"]:
        lines.append(
            f"| {s['vectors']} | {s['ingest']['docs_per_s']} | {s['ingest']['us_per_doc']} | "
            f"{s['knn']['wall_ms']['p50']} / {s['knn']['wall_ms']['p95']} | {s['knn']['server_took_ms']['p50']} | "
            f"{s['knn_docvalues']['wall_ms']['p50']} | "
            f"{s['recall']['recall_at_10_k50']} / {s['recall']['recall_at_10_k10']} | "
            f"{s['index_size']['store_bytes'] / 2**20:.1f} | {s['index_size']['segments']} |"
        )
    lines += [
        "",
        "Definitions: latency is measured from the *scheduled* send time (open loop); 'Kafka hops' is e2e minus the "
        "worker's embed + knn + rank (so it includes both Kafka round trips, (de)serialisation, the worker's queueing "
        "and the client). Freshness is from the start of publishing the interaction to the receipt of the first "
        "reply (searches every 20 ms) whose `personalized` is true and whose hits' `drivers` name the image. Recall "
        "counts an approximate hit as correct if its score ((1 + cos) / 2 in both) is ≥ the 10th exact "
        "score (repeated images have identical vectors). "
        "Index size: `_cat/indices` store.size (on disk, includes _source) and the Lucene vector files from "
        "`_stats/segments?include_segment_file_sizes` (what must stay in the page cache for fast k-NN; "
        "`segments.memory_in_bytes` is "
        f"{rc['index_size']['segments_memory_bytes']} — Lucene 9 keeps these off-heap).",
    ]
    return "\n".join(lines) + "\n"


def plots(res: dict, out_dir: Path, prefix: str = "bench-") -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    fx = res["search"]["fixed_rate"]
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for key, label in (("cdf_e2e_ms", "end to end (client)"), ("cdf_worker_ms", "worker: embed + knn + rank")):
        xs = fx[key]
        if xs:
            ax.plot(xs, np.arange(1, len(xs) + 1) / len(xs), label=label)
    ax.axvline(res["config"]["slo_p99_ms"], color="grey", ls=":", label="p99 target")
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("fraction of requests")
    ax.set_title(f"Search over Kafka at {fx['offered_rate']:g} req/s, {res['search']['indexed_docs']} docs")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    paths.append(out_dir / f"{prefix}latency-cdf.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    sw = res["search"]["sweep"]
    fig, ax = plt.subplots(figsize=(6.4, 4))
    rates = [s["offered_rate"] for s in sw]
    for p in ("p50", "p95", "p99"):
        ax.plot(rates, [s["e2e_ms"][p] for s in sw], marker="o", label=f"e2e {p}")
    ax.axhline(res["config"]["slo_p99_ms"], color="grey", ls=":", label="p99 target")
    ax.set_yscale("log")
    ax.set_xlabel("offered rate (req/s, open loop)")
    ax.set_ylabel("latency (ms)")
    ax2 = ax.twinx()
    ax2.plot(rates, [s["achieved_rate"] for s in sw], color="black", ls="--", marker="x", label="achieved req/s")
    ax2.set_ylabel("achieved rate (req/s)")
    ax.set_title("Search latency vs offered rate (one query worker)")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    paths.append(out_dir / f"{prefix}latency-vs-rate.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    sc = res["scale"]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
    ns = [s["vectors"] for s in sc]
    axes[0].plot(ns, [s["knn"]["wall_ms"]["p50"] for s in sc], marker="o", label="p50")
    axes[0].plot(ns, [s["knn"]["wall_ms"]["p95"] for s in sc], marker="o", label="p95")
    axes[0].set_ylabel("k-NN latency (ms, k=50)")
    axes[0].legend()
    axes[1].plot(ns, [s["recall"]["recall_at_10_k50"] for s in sc], marker="o", label="k=50")
    axes[1].plot(ns, [s["recall"]["recall_at_10_k10"] for s in sc], marker="o", label="k=10")
    axes[1].axhline(0.98, color="grey", ls=":", label="target")
    axes[1].set_ylabel("recall@10 vs exact")
    axes[1].legend()
    axes[2].plot(ns, [s["ingest"]["us_per_doc"] for s in sc], marker="o")
    axes[2].set_ylabel("bulk ingest (µs per vector)")
    for a in axes:
        a.set_xscale("log")
        a.set_xlabel("indexed vectors")
        a.grid(alpha=0.3)
    fig.suptitle(f"OpenSearch k-NN (lucene HNSW) vs index size, d={res['search']['dimension']}")
    fig.tight_layout()
    paths.append(out_dir / f"{prefix}scale.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths


def write_report(res: dict, inv: Invocation) -> Path:
    """<out> (JSON), <out>.md and the plots next to it (and in docs/img/ when asked); returns the .md."""
    out = inv.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2, default=str))
    md = out.with_suffix(".md")
    md.write_text(markdown(res))
    pngs = plots(res, out.parent, inv.plot_prefix)
    if inv.copy_docs_img:
        for p in pngs:
            shutil.copy(p, REPO / "docs" / "img" / p.name)
    say(f"wrote {out}, {md}, {', '.join(str(p) for p in pngs)}")
    return md
