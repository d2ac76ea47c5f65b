"""``imgsearch`` command line: topics, workers, ingest, interactions, search, clusters, demo."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from consumers.roles import ROLES, worker_main
from imgsearch.config import Settings
from jobs.ingest import cmd_ingest

if TYPE_CHECKING:
    from schemas.events import SearchResponse


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


async def cmd_topics(settings: Settings) -> None:
    from imgsearch.kafka.admin import ensure_topics

    created = await ensure_topics(
        settings.kafka_bootstrap, settings.topics.all_shared(), settings.partitions, settings=settings
    )
    for spec in settings.topics.all_shared():
        print(f"{spec.name:45s} key={spec.key:12s} {'(created)' if spec.name in created else ''}")


def format_response(resp: SearchResponse) -> str:
    """A search reply as a table for people (``--json`` prints the SearchResponse itself)."""
    timings = ", ".join(f"{k} {v:.0f} ms" for k, v in resp.timings_ms.items())
    lines = [
        f"user {resp.user_id}: {len(resp.hits)} hits, personalized={resp.personalized} "
        f"(weight {resp.personalization_weight:g}, ranker {resp.ranker or '-'}){'; ' + timings if timings else ''}"
    ]
    lines += [f"note: {note}" for note in resp.notes]
    if resp.has_more and resp.cursor:
        lines.append(f"page {resp.page}; next page: --search-after {resp.cursor}")
    if resp.hits:
        width = min(60, max(len("image"), *(len(h.image_id) for h in resp.hits)))
        lines.append(f"{'#':>3}  {'image':{width}s} {'cluster':>7} {'kNN':>7} {'personal':>8} {'blended':>7}")
        lines += [
            f"{h.rank:>3}  {h.image_id[:width]:{width}s} {h.cluster_id:>7} {h.knn_score:7.3f} "
            f"{h.personal_score:8.3f} {h.blended_score:7.3f}"
            for h in resp.hits
        ]
    return "\n".join(lines)


async def cmd_search(
    settings: Settings,
    user: str,
    text: str | None,
    k: int,
    weight: float | None,
    timeout: float,
    as_json: bool = False,
    mmr_lambda: float | None = None,
    *,
    similar_to: str | None = None,
    filters: list[str] | None = None,
    page: int = 1,
    ranking_id: str | None = None,
    search_after: str | None = None,
) -> int:
    """0 on a reply, 1 if the query worker answered with an error, 4 if the request could not be sent
    (``KafkaClientError``: a deadline, a missing topic, over the size limits), 3 on no reply in time. With
    ``as_json`` stdout holds exactly one JSON object: the SearchResponse, or on a timeout
    ``{"type": "search.timeout", "error": {"code": "timeout", "message": ...}}``."""
    from pydantic import ValidationError

    from imgsearch.kafka.deadlines import KafkaClientError
    from producers.search_client import SearchClient, SearchTimeout
    from streams.retrieval import parse_filter

    try:
        conditions = [parse_filter(f) for f in filters or []]
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        print(f"search: bad --filter: {exc}", file=sys.stderr)
        return 2
    try:
        async with SearchClient(settings.kafka_bootstrap, topics=settings.topics, settings=settings) as client:
            resp = await client.search(
                user,
                text,
                k=k,
                personalization_weight=weight,
                mmr_lambda=mmr_lambda,
                timeout_s=timeout,
                raise_on_error=False,
                similar_to=similar_to,
                filters=conditions,
                page=page,
                ranking_id=ranking_id,
                search_after=search_after,
            )
    except ValidationError as exc:  # the request itself: a bad --page, --search-after, -k ...
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'request'}: {e['msg']}" for e in exc.errors())
        print(f"search: invalid request: {problems}", file=sys.stderr)
        return 2
    except SearchTimeout as exc:
        message = f"no reply in {timeout:g} s (is a query worker running?): {exc}"
        if as_json:
            print(json.dumps({"type": "search.timeout", "error": {"code": "timeout", "message": message}}))
        else:
            print(f"search: {message}", file=sys.stderr)
        return 3
    except KafkaClientError as exc:  # a deadline, a missing topic, a request over the size limits
        if as_json:
            print(json.dumps({"type": "search.failed", "error": {"code": type(exc).__name__, "message": str(exc)}}))
        else:
            print(f"search: {exc}", file=sys.stderr)
        return 4
    if as_json:
        print(resp.model_dump_json())
    elif resp.error is not None:
        print(f"search failed: {resp.error.code}: {resp.error.message}", file=sys.stderr)
    else:
        print(format_response(resp))
    return 0 if resp.error is None else 1


async def cmd_interact(settings: Settings, user: str, image: str, event_type: str) -> None:
    from producers.publisher import EventPublisher
    from schemas.events import EventType, Interaction

    async with EventPublisher(settings.kafka_bootstrap, topics=settings.topics, settings=settings) as pub:
        await pub.publish_interaction(Interaction(user_id=user, image_id=image, event_type=EventType(event_type)))


async def cmd_forget(settings: Settings, user: str) -> str:
    """Publish a ForgetUser request (issue 14 item 15); returns its event id."""
    from producers.publisher import EventPublisher
    from schemas.events import ForgetUser

    request = ForgetUser(user_id=user, requested_by="cli")
    async with EventPublisher(settings.kafka_bootstrap, topics=settings.topics, settings=settings) as pub:
        await pub.publish_forget(request)
    print(
        f"forget request {request.event_id} for {user} published: the interaction workers drop the user's parked "
        "interactions, the query workers delete the profile (a tombstone on the profile table's changelog)"
        + (", and a Personalize data deletion job is started" if settings.ranker == "personalize" else "")
        + f"; raw events age out of the event topics within {settings.event_retention_ms / 86_400_000:g} days"
    )
    return request.event_id


def parse_likes(raw: str) -> dict[str, list[str]]:
    """'alice=papirus,bob=moka+paper' -> {'alice': ['papirus'], 'bob': ['moka', 'paper']}"""
    out = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        user, _, styles = part.partition("=")
        if not user or not styles:
            raise SystemExit(f"--likes: expected user=style[+style], got {part!r}")
        out[user.strip()] = [s.strip() for s in styles.split("+") if s.strip()]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="imgsearch", description=__doc__)
    ap.add_argument("-v", "--verbose", action="store_true")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("topics", help="create the shared topics (idempotent)")
    sub.add_parser("settings", help="print the effective settings (secrets redacted)")
    w = sub.add_parser("worker", help="run one worker role")
    w.add_argument("role", choices=list(ROLES))
    ing = sub.add_parser("ingest", help="publish a folder of images as new-image events")
    ing.add_argument("folder", type=Path)
    ing.add_argument("--inline", action="store_true", help="send bytes inline instead of file:// URIs")
    s = sub.add_parser("search", help="search over Kafka request/reply")
    s.add_argument("text", nargs="?", default=None, help="the query text (or --similar-to, or both)")
    s.add_argument("--similar-to", default=None, metavar="IMAGE_ID", help="query by an indexed image's vector")
    s.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="COND",
        help="metadata condition inside the k-NN: key=value, key=a|b, key>=v, key<v (repeatable)",
    )
    s.add_argument("--page", type=int, default=1, help="1-based page of k hits")
    s.add_argument("--ranking-id", default=None, help="the ranking_id of an earlier page (keeps its order)")
    s.add_argument("--search-after", default=None, metavar="CURSOR", help="the cursor a reply printed: its next page")
    s.add_argument("--user", default="anonymous")
    s.add_argument("-k", type=int, default=10)
    s.add_argument("--weight", type=float, default=None)
    s.add_argument("--mmr-lambda", type=float, default=None, help="diversity (MMR): 1 = relevance only, lower = varied")
    s.add_argument("--timeout", type=float, default=5.0)
    s.add_argument("--json", action="store_true", help="print the reply as one JSON object (the SearchResponse)")
    it = sub.add_parser("interact", help="publish one interaction")
    it.add_argument("user")
    it.add_argument("image")
    it.add_argument("event_type", choices=["view", "click", "favorite", "download"])
    fg = sub.add_parser("forget", help="forget a user: profile, parked events, Amazon Personalize data")
    fg.add_argument("user")
    c = sub.add_parser("clusters", help="train a centroid model and publish it")
    c.add_argument("folder", type=Path, help="images to train on")
    c.add_argument("-k", type=int, default=100)
    c.add_argument("--vector", choices=["style", "search"], default="style")
    rc = sub.add_parser("recluster", help="retrain centroids on the indexed vectors and re-assign every image")
    rc.add_argument("-k", type=int, default=100)
    rc.add_argument("--vector", choices=["style", "search"], default="style")
    ex = sub.add_parser("export-personalize", help="cluster-level interactions as a Personalize dataset (CSV)")
    ex.add_argument("--out", type=Path, default=Path("personalize-export"))
    ex.add_argument("--s3", default=None, help="also upload to s3://bucket/prefix")
    sub.add_parser("train-ranker", help="train the local ranker's offline model (cluster co-occurrence) and publish it")
    kr = sub.add_parser("k-report", help="inertia and silhouette of K-Means over a range of K (indexed vectors)")
    kr.add_argument("--k", default="2,4,8,16,32,64,100", help="comma-separated K values")
    kr.add_argument("--vector", choices=["style", "search"], default="style")
    sub.add_parser(
        "gateway",
        help="the HTTP gateway and web page (IMGSEARCH_GATEWAY_PORT, default 8080; IMGSEARCH_GATEWAY_AUTH "
        "jwt|api_key|demo)",
    )
    th = sub.add_parser("train-heads", help="learn the search and style heads (imgsearch train-heads -- --help)")
    th.add_argument("args", nargs=argparse.REMAINDER)
    d = sub.add_parser("demo", help="the end-to-end demo (expects the engines running)")
    d.add_argument("--folder", type=Path, default=None, help="<style>/<subject>/<name>.png (default: icon set)")
    d.add_argument("--clusters", type=int, default=None, help="k of the style clusters (default: one per style)")
    d.add_argument("--query", default="a printer")
    d.add_argument("--subject", default=None, help="the query's subject folder (default: its last word)")
    d.add_argument(
        "--likes", default=None, help="who likes which styles, e.g. 'alice=papirus,bob=moka+paper' (the default)"
    )
    d.add_argument("--keep-workers", action="store_true", help="leave the workers running afterwards")
    d.add_argument("--web", action="store_true", help="then serve the web page until Ctrl-C")
    args = ap.parse_args(argv)
    _setup_logging(args.verbose)
    settings = Settings()
    if args.cmd == "topics":
        asyncio.run(cmd_topics(settings))
    elif args.cmd == "settings":
        print(json.dumps(settings.redacted(), indent=2, default=str))
    elif args.cmd == "worker":
        worker_main(args.role)()
    elif args.cmd == "ingest":
        asyncio.run(cmd_ingest(settings, args.folder, args.inline))
    elif args.cmd == "search":
        return asyncio.run(
            cmd_search(
                settings,
                args.user,
                args.text,
                args.k,
                args.weight,
                args.timeout,
                args.json,
                args.mmr_lambda,
                similar_to=args.similar_to,
                filters=args.filter,
                page=args.page,
                ranking_id=args.ranking_id,
                search_after=args.search_after,
            )
        )
    elif args.cmd == "interact":
        asyncio.run(cmd_interact(settings, args.user, args.image, args.event_type))
    elif args.cmd == "forget":
        asyncio.run(cmd_forget(settings, args.user))
    elif args.cmd == "clusters":
        from jobs.clusters import train_from_folder

        asyncio.run(train_from_folder(settings, args.folder, args.k, args.vector))
    elif args.cmd == "recluster":
        from jobs.clusters import recluster

        asyncio.run(recluster(settings, args.k, args.vector))
    elif args.cmd == "export-personalize":
        from imgsearch.kafka.model_topics import current_model
        from jobs.export import read_events, rows, write

        async def export() -> None:
            events = await read_events(settings)
            table = rows(events, await current_model(settings))
            for path in write(table, args.out, args.s3):
                print(path)
            print(f"{len(table)} interactions exported")

        asyncio.run(export())
    elif args.cmd == "train-ranker":
        from jobs.train_ranker import train_and_publish

        asyncio.run(train_and_publish(settings))
    elif args.cmd == "k-report":
        from jobs.clusters import k_report

        asyncio.run(k_report(settings, [int(x) for x in args.k.split(",")], args.vector))
    elif args.cmd == "train-heads":
        from jobs.train_heads import main as train_heads_main

        return train_heads_main([a for a in args.args if a != "--"])
    elif args.cmd == "gateway":
        from apps.gateway import main as gateway_main

        return gateway_main([])
    elif args.cmd == "demo":
        from jobs.demo import run_demo

        try:
            return asyncio.run(
                run_demo(
                    settings,
                    args.folder,
                    k_clusters=args.clusters,
                    query=args.query,
                    subject=args.subject,
                    likes=parse_likes(args.likes) if args.likes else None,
                    keep_workers=args.keep_workers,
                    web=args.web,
                )
            )
        except (asyncio.CancelledError, KeyboardInterrupt):  # SIGTERM / Ctrl-C: workers already stopped
            print("[demo] stopped", file=sys.stderr)
            return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
