"""Speed benchmark sections 3 and 4: search over Kafka request/reply (unloaded, at a fixed open-loop
rate, and a rate sweep to the max sustainable rate) and freshness (an interaction published → the
first search reply for that user reflecting it)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from dataclasses import dataclass, field
from typing import Any

from bench.common import say, stats
from bench.speed_env import Run


@dataclass
class Shot:
    target: float  # scheduled send time (perf_counter)
    latency_ms: float | None = None  # reply received - scheduled send time
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


async def one_search(client: Any, shot: Shot, user: str, text: str, timeout: float) -> None:
    from producers import SearchTimeout

    try:
        resp = await client.search(user, text, k=10, timeout_s=timeout, raise_on_error=False)
    except SearchTimeout:
        shot.error = "timeout"
        return
    except Exception as exc:
        shot.error = type(exc).__name__
        return
    shot.latency_ms = (time.perf_counter() - shot.target) * 1000
    if resp.error is not None:
        shot.error = resp.error.code
    shot.timings = dict(resp.timings_ms)


async def open_loop(client: Any, rate: float, duration: float, queries: list[str], timeout: float) -> list[Shot]:
    """Requests at a fixed offered rate, whatever the replies do (open loop: no coordinated omission;
    latency is measured from the scheduled send time)."""
    n = max(1, int(rate * duration))
    t0 = time.perf_counter() + 0.05
    shots, tasks = [], []
    for i in range(n):
        shot = Shot(target=t0 + i / rate)
        delay = shot.target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        shots.append(shot)
        tasks.append(
            asyncio.create_task(one_search(client, shot, f"load-u{i % 64}", queries[i % len(queries)], timeout))
        )
    await asyncio.gather(*tasks)
    return shots


def answered(shots: list[Shot]) -> list[tuple[Shot, float]]:
    """The shots answered without an error, each with its latency (ms)."""
    return [(s, s.latency_ms) for s in shots if s.error is None and s.latency_ms is not None]


def summarize(shots: list[Shot], rate: float, duration: float) -> dict:
    ok = answered(shots)
    e2e = [lat for _, lat in ok]
    worker = [sum(s.timings.get(k, 0.0) for k in ("embed", "knn", "rank")) for s, _ in ok]
    hops = [e - w for e, w in zip(e2e, worker, strict=True)]
    errors: dict[str, int] = {}
    for s in shots:
        if s.error:
            errors[s.error] = errors.get(s.error, 0) + 1
    last = max((s.target + lat / 1000 for s, lat in ok), default=0.0)
    first = min((s.target for s in shots), default=0.0)
    span = max(last - first, duration)
    return {
        "offered_rate": rate,
        "requests": len(shots),
        "ok": len(ok),
        "errors": errors,
        "error_rate": round(1 - len(ok) / max(1, len(shots)), 4),
        "achieved_rate": round(len(ok) / span, 2) if ok else 0.0,
        "e2e_ms": stats(e2e),
        "embed_ms": stats(s.timings.get("embed", 0.0) for s, _ in ok),
        "knn_ms": stats(s.timings.get("knn", 0.0) for s, _ in ok),
        "rank_ms": stats(s.timings.get("rank", 0.0) for s, _ in ok),
        "worker_ms": stats(worker),
        "kafka_hops_ms": stats(hops),
    }


async def wait_quiet(client: Any, text: str, timeout: float = 60) -> None:
    """Until the query worker answers a fresh request quickly again (its backlog is drained)."""
    from producers import SearchTimeout

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        with contextlib.suppress(SearchTimeout):
            r = await client.search("quiet-probe", text, k=10, timeout_s=5, raise_on_error=False)
            if r.error is None and time.perf_counter() - t0 < 0.2:
                return
        await asyncio.sleep(0.5)


async def freshness_trial(client: Any, pub: Any, user: str, text: str, timeout: float = 10.0) -> dict:
    from schemas.events import EventType, Interaction

    first = await client.search(user, text, k=20, timeout_s=5)
    target = next((h.image_id for h in first.hits if not h.image_id.startswith("syn/")), None)
    if target is None:
        return {"error": "no real image among the hits"}
    found: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    async def poll() -> None:
        with contextlib.suppress(Exception):
            r = await client.search(user, text, k=20, timeout_s=5, raise_on_error=False)
            reflects = r.personalized and any(d.endswith(f":{target}") for h in r.hits for d in h.drivers)
            if reflects and not found.done():
                found.set_result(time.perf_counter())

    t0 = time.perf_counter()
    await pub.publish_interaction(Interaction(user_id=user, image_id=target, event_type=EventType.FAVORITE))
    t_ack = time.perf_counter()
    polls = []
    while not found.done() and time.perf_counter() - t0 < timeout:
        polls.append(asyncio.create_task(poll()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(found), 0.02)
    await asyncio.gather(*polls)
    if not found.done():
        return {"error": f"not reflected within {timeout:.0f}s", "polls": len(polls)}
    return {
        "freshness_ms": round((found.result() - t0) * 1000, 2),
        "publish_ack_ms": round((t_ack - t0) * 1000, 2),
        "polls": len(polls),
        "image": target,
    }


async def bare_search(run: Run, concurrency: int, duration: float) -> dict[str, Any]:
    """The query worker's work without Kafka or faust, in this process, closed loop with
    ``concurrency`` requests in flight: text embedding (on one offload thread, batched across the
    requests in flight, as in the worker), the same k-NN on the same index
    (``OpenSearchIndex.knn_sources``, N + 1 asked as the worker does) and the blend."""
    from imgsearch.domain.blend import blend
    from imgsearch.index.opensearch import OpenSearchIndex
    from streams import retrieval
    from streams.common import Offload, TextBatcher

    s, queries = run.settings, run.queries
    index = OpenSearchIndex(
        s.opensearch_url, s.index_name, model_id=run.embedder.model_id, settings=s, timeout_s=s.gateway_search_timeout_s
    )
    texts = TextBatcher(run.embedder.embed_texts, Offload())
    # the worker's candidates (asked as N + 1) and ranking depth for k = 10
    n = retrieval.probe_size(retrieval.global_candidates(s, 10, 10))
    depth = retrieval.ranking_depth(10, 10)
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + duration

    async def loop(i: int) -> None:
        nonlocal errors
        j = i
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            try:
                vec = await texts.embed(queries[j % len(queries)])
                found = await index.knn_sources(vec.tolist(), [(n, None)])
                blend(found[0], {}, 0.0, depth, None, s.blend_mode)
                latencies.append((time.perf_counter() - t0) * 1000)
            except Exception:
                errors += 1
            j += concurrency

    t_start = time.perf_counter()
    try:
        await asyncio.gather(*(loop(i) for i in range(concurrency)))
    finally:
        await index.close()
    span = time.perf_counter() - t_start
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": errors,
        "rate": round(len(latencies) / span, 2),
        "latency_ms": stats(latencies),
    }


async def bare_limit(run: Run) -> dict[str, Any]:
    """3a. The bare engines' closed-loop limit: the best rate over a few concurrencies."""
    duration = 2.0 if run.cfg.quick else 8.0
    say("3a. bare search (embed + k-NN + blend in one process, no Kafka, no faust), closed loop ...")
    levels = []
    for c in (1, 2, 4, 8):
        r = await bare_search(run, c, duration)
        levels.append(r)
        say(f"   {c} in flight: {r['rate']} req/s, p50 {r['latency_ms']['p50']} p99 {r['latency_ms']['p99']} ms")
    best = max(levels, key=lambda r: r["rate"])
    return {"levels": levels, "limit_rate": best["rate"], "at_concurrency": best["concurrency"]}


# ------------------------------------------------------------------------------------ the stages
async def search_and_freshness(run: Run) -> None:
    """3 and 4 over one search client: the latency sections, then freshness."""
    from producers import SearchClient

    async with SearchClient(run.settings.kafka_bootstrap, topics=run.settings.topics, settings=run.settings) as client:
        await warm_up(run, client)
        # the load generator's own long-lived objects (the embedder, the ingest results) out of the
        # collector's reach, as the workers do (consumers/_run.py): its pauses would count as latency
        gc.collect()
        gc.freeze()
        bare = await bare_limit(run)
        run.res["search"] = await search_latency(run, client)
        run.res["search"]["bare_engines"] = bare
        product = run.res["search"]["max_rate_meeting_p99_slo"]
        run.res["search"]["ratio_to_bare"] = round(product / bare["limit_rate"], 3) if bare["limit_rate"] else None
        run.res["search"]["query_concurrency"] = run.settings.query_concurrency
        run.res["search"]["merge_wait_s"] = run.merge_wait_s
        run.res["freshness"] = await freshness(run, client)


async def warm_up(run: Run, client: Any) -> None:
    """Until the query worker answers, then a short load (not measured)."""
    from producers import SearchTimeout

    deadline = time.monotonic() + 120
    while True:
        try:
            await client.search("warmup", run.queries[0], timeout_s=5)
            break
        except SearchTimeout:
            run.workers.check_alive()
            if time.monotonic() > deadline:
                raise
    await open_loop(client, 10, 3 if run.cfg.quick else 6, run.queries, run.cfg.search_timeout_s)


async def search_latency(run: Run, client: Any) -> dict[str, Any]:
    cfg, queries = run.cfg, run.queries
    search: dict[str, Any] = {
        "indexed_docs": run.docs, "real_docs": run.real_docs, "query_texts": len(queries),
        "dimension": run.embedder.dimension,
    }  # fmt: skip
    await wait_quiet(client, queries[0])
    say("   unloaded latency: one request at a time (closed loop) ...")
    seq = []
    for i in range(10 if cfg.quick else 50):
        shot = Shot(target=time.perf_counter())
        await one_search(client, shot, f"seq-u{i % 8}", queries[i % len(queries)], cfg.search_timeout_s)
        seq.append(shot)
    search["unloaded"] = summarize(seq, 0, 0)
    u = search["unloaded"]
    say(
        f"   unloaded e2e p50 {u['e2e_ms']['p50']} ms (embed {u['embed_ms']['p50']}, knn {u['knn_ms']['p50']}, "
        f"rank {u['rank_ms']['p50']}, kafka hops {u['kafka_hops_ms']['p50']})"
    )
    say(f"   {run.docs} docs; fixed rate {cfg.fixed_rate}/s for {cfg.fixed_duration_s}s (open loop) ...")
    shots = await open_loop(client, cfg.fixed_rate, cfg.fixed_duration_s, queries, cfg.search_timeout_s)
    fixed = summarize(shots, cfg.fixed_rate, cfg.fixed_duration_s)
    ok = [(s, lat) for s, lat in answered(shots) if lat]
    fixed["cdf_e2e_ms"] = sorted(round(lat, 2) for _, lat in ok)
    fixed["cdf_worker_ms"] = sorted(round(sum(s.timings.values()), 2) for s, _ in ok)
    search["fixed_rate"] = fixed
    e = fixed["e2e_ms"]
    say(
        f"   e2e p50 {e['p50']} p95 {e['p95']} p99 {e['p99']} ms; embed p50 {fixed['embed_ms']['p50']}, "
        f"knn p50 {fixed['knn_ms']['p50']}, rank p50 {fixed['rank_ms']['p50']}, kafka hops p50 "
        f"{fixed['kafka_hops_ms']['p50']} ms; errors {fixed['errors']}"
    )
    sweep = await rate_sweep(run, client)
    search["sweep"] = sweep
    search["max_rate_meeting_p99_slo"] = max((s["offered_rate"] for s in sweep if s["meets_slo"]), default=0)
    search["max_sustainable_rate"] = max((s["offered_rate"] for s in sweep if s["sustained"]), default=0)
    search["sustainable_definition"] = (
        "highest offered rate with errors ≤ 1 %, p99 ≤ 1 s and achieved ≥ 90 % of offered"
    )
    say(
        f"   max sustainable {search['max_sustainable_rate']}/s; meeting p99 ≤ {cfg.slo_p99_ms:g} ms up to "
        f"{search['max_rate_meeting_p99_slo']}/s"
    )
    return search


async def rate_sweep(run: Run, client: Any) -> list[dict[str, Any]]:
    """Rising offered rates until one is not sustained."""
    cfg, queries = run.cfg, run.queries
    sweep = []
    for rate in cfg.sweep_rates:
        await wait_quiet(client, queries[0])
        s = summarize(
            await open_loop(client, rate, cfg.sweep_duration_s, queries, cfg.search_timeout_s),
            rate,
            cfg.sweep_duration_s,
        )
        p99 = s["e2e_ms"]["p99"]
        s["meets_slo"] = bool(s["error_rate"] <= 0.01 and p99 is not None and p99 <= cfg.slo_p99_ms)
        s["sustained"] = bool(
            s["error_rate"] <= 0.01 and p99 is not None and p99 <= 1000 and s["achieved_rate"] >= 0.9 * rate
        )
        sweep.append(s)
        say(
            f"   offered {rate}/s: achieved {s['achieved_rate']}/s, p50 {s['e2e_ms']['p50']} p99 "
            f"{s['e2e_ms']['p99']} ms, errors {s['error_rate']:.1%}"
        )
        if not s["sustained"]:
            break
    return sweep


async def freshness(run: Run, client: Any) -> dict[str, Any]:
    from producers import EventPublisher

    cfg, queries = run.cfg, run.queries
    await wait_quiet(client, queries[0])
    say(f"4. freshness: {cfg.fresh_trials} trials (interaction → first reply reflecting it) ...")
    trials = []
    async with EventPublisher(run.settings.kafka_bootstrap, topics=run.settings.topics, settings=run.settings) as pub:
        for t in range(cfg.fresh_trials):
            trials.append(await freshness_trial(client, pub, f"fresh-{t}", queries[t % len(queries)]))
    ok = [t["freshness_ms"] for t in trials if "freshness_ms" in t]
    out: dict[str, Any] = {
        "trials": len(trials),
        "ok": len(ok),
        "freshness_ms": stats(ok),
        "publish_ack_ms": stats(t["publish_ack_ms"] for t in trials if "publish_ack_ms" in t),
        "poll_interval_ms": 20,
        "failures": [t for t in trials if "freshness_ms" not in t],
        "target_p99_ms": 1000,
    }
    f = out["freshness_ms"]
    say(f"   freshness p50 {f['p50']} p99 {f['p99']} ms ({len(ok)}/{len(trials)} ok)")
    return out
