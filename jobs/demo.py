"""The end-to-end demo on the real engines.

Starts the three worker roles, ingests a labelled image folder (``<style>/<subject>/<name>.png``,
e.g. the icon-theme set from scripts/setup_data.sh), trains style clusters, sends interactions for
two users who like different styles, runs the same query for both and prints both rankings. Writes
an HTML page and a PNG with the results side by side.
"""

from __future__ import annotations

import asyncio
import base64
import html
import io
import json
import logging
import random
import signal
import sys
import time
from collections import Counter
from pathlib import Path

from PIL import Image, ImageDraw

from imgsearch.config import REPO_ROOT, Settings, redact_url
from imgsearch.connections import kafka_security
from imgsearch.progress import progress_bar
from schemas.events import SearchResponse

log = logging.getLogger(__name__)
DEMO_PREFIX = "demo"
DEFAULT_LIKES = {"alice": ["papirus"], "bob": ["moka"]}
OUT_DIR = REPO_ROOT / "demo-output"


def labels_from_path(image_id: str) -> tuple[str, str]:
    parts = image_id.split("/")
    style = parts[0] if len(parts) > 1 else "?"
    subject = parts[1] if len(parts) > 2 else "?"
    return style, subject


def default_folder(settings: Settings) -> Path:
    return settings.cache_path / "datasets" / "demo-v2" / "images"  # scripts/setup_data.sh (imgsearch.datasets.curated)


async def reset_demo_state(settings: Settings) -> None:
    """A clean, repeatable demo: drop the demo's topics (incl. faust changelogs) and index."""
    from aiokafka.admin import AIOKafkaAdminClient

    from imgsearch.index.opensearch import OpenSearchIndex
    from imgsearch.kafka.admin import delete_topics

    admin = AIOKafkaAdminClient(**kafka_security(settings), bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith((f"{DEMO_PREFIX}.", f"{DEMO_PREFIX}-"))]
    finally:
        await admin.close()
    await delete_topics(settings.kafka_bootstrap, names, settings)
    idx = OpenSearchIndex(settings.opensearch_url, settings.index_name, settings=settings)
    await idx.delete_index()
    await idx.close()
    await asyncio.sleep(1.0)  # let the deletions settle before re-creating


def thumb_b64(path: Path, size: int = 96) -> str:
    with Image.open(path) as src:
        im = src.convert("RGB")
    im.thumbnail((size, size))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def results_json(
    query: str, subject: str, results: dict[str, SearchResponse], likes: dict[str, list[str]], ids: list[str]
) -> dict[str, object]:
    """What the demo showed, for machines: per user the preferred styles, how many on-subject images
    of those styles the collection holds, and the hits with their scores."""
    users = []
    for user, resp in results.items():
        prefers = likes.get(user, [])
        available = sum(1 for i in ids if labels_from_path(i)[1] == subject and labels_from_path(i)[0] in prefers)
        hits = []
        for h in resp.hits:
            style, subj = labels_from_path(h.image_id)
            hits.append(
                {
                    "image_id": h.image_id,
                    "style": style,
                    "subject": subj,
                    "knn_score": h.knn_score,
                    "personal_score": h.personal_score,
                    "blended_score": h.blended_score,
                }
            )
        users.append({"user": user, "prefers": prefers, "available": available, "hits": hits})
    return {"query": query, "subject": subject, "users": users}


def write_report(
    folder: Path,
    query: str,
    subject: str,
    results: dict[str, SearchResponse],
    likes: dict[str, list[str]],
    ids: list[str],
) -> Path:
    OUT_DIR.mkdir(exist_ok=True)
    (OUT_DIR / "results.json").write_text(json.dumps(results_json(query, subject, results, likes, ids), indent=2))
    cols = []
    for user, resp in results.items():
        cells = []
        for h in resp.hits:
            style, subj = labels_from_path(h.image_id)
            path = folder / f"{h.image_id}.png"
            img = f'<img src="data:image/png;base64,{thumb_b64(path)}">' if path.exists() else ""
            tip = html.escape(
                f"{h.image_id}\nk-NN {h.knn_score:.3f} · personal {h.personal_score:.3f} · "
                f"blended {h.blended_score:.3f} · cluster {h.cluster_id}\n" + ", ".join(h.drivers)
            )
            mine = " class=mine" if style in likes.get(user, []) else ""
            cells.append(
                f'<figure title="{tip}"{mine}>{img}<figcaption>#{h.rank} {html.escape(style)}<br>'
                f"{html.escape(subj)}</figcaption></figure>"
            )
        likes_txt = f"likes {' and '.join(likes[user])}" if likes.get(user) else "no history"
        cols.append(
            f"<section><h2>{html.escape(user)} <small>({html.escape(likes_txt)})</small></h2>"
            f"<div class=grid>{''.join(cells)}</div></section>"
        )
    page = f"""<!doctype html><meta charset=utf-8><title>imgsearch demo: {html.escape(query)}</title>
<style>body{{font-family:sans-serif;margin:1em}} .row{{display:flex;flex-direction:column;gap:1em}}
.grid{{display:grid;grid-template-columns:repeat(10,104px);gap:6px}} figure{{margin:0;text-align:center;font-size:11px}}
img{{width:96px;height:96px;object-fit:contain;border:1px solid #ddd;background:#fff}}
figure.mine img{{border:3px solid #2a7}}</style>
<h1>Same query, different users: “{html.escape(query)}”</h1>
<p>Green frame: an image in a style the user likes. Hover a result for its scores and the interactions
behind them.</p><div class=row>{"".join(cols)}</div>"""
    out = OUT_DIR / "index.html"
    out.write_text(page)
    # the same as a picture
    rows = len(results)
    k = max(len(r.hits) for r in results.values())
    sheet = Image.new("RGB", (170 + k * 100, rows * 124 + 10), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (user, resp) in enumerate(results.items()):
        liked = likes.get(user, [])
        draw.text((6, r * 124 + 46), f"{user}\n({', '.join(liked) if liked else 'new user'})", fill="black")
        for i, h in enumerate(resp.hits):
            path = folder / f"{h.image_id}.png"
            x, y = 170 + i * 100, r * 124 + 5
            style = labels_from_path(h.image_id)[0]
            if style in liked:
                draw.rectangle((x - 3, y - 3, x + 92, y + 92), outline=(34, 170, 119), width=3)
            if path.exists():
                with Image.open(path) as src:
                    im = src.convert("RGB")
                im.thumbnail((90, 90))
                sheet.paste(im, (x, y))
            draw.text((x, y + 95), f"#{h.rank} {style[:13]}", fill="black")
            draw.text((x, y + 107), labels_from_path(h.image_id)[1][:15], fill="gray")
    sheet.save(OUT_DIR / "results.png")
    return out


def print_ranking(user: str, resp: SearchResponse) -> None:
    print(
        f"\n  {user}: personalized={resp.personalized} ranker={resp.ranker} "
        f"({', '.join(f'{k} {v:.0f} ms' for k, v in resp.timings_ms.items())})"
    )
    for note in resp.notes:
        print(f"    note: {note}")
    print(f"    {'#':>2}  {'image':44s} {'style':14s} {'subject':12s} {'kNN':>6} {'pers':>6} {'blend':>6} cl")
    for h in resp.hits:
        style, subject = labels_from_path(h.image_id)
        print(
            f"    {h.rank:>2}  {h.image_id[:44]:44s} {style[:14]:14s} {subject[:12]:12s} "
            f"{h.knn_score:6.3f} {h.personal_score:6.3f} {h.blended_score:6.3f} {h.cluster_id}"
        )


async def serve(settings: Settings) -> None:
    """Run the web gateway on the demo's pipeline (``settings``) until interrupted."""
    import subprocess

    from imgsearch.config import process_environment

    port = str(settings.gateway_port)
    # the demo's gateway authenticates nobody (anyone may pick alice or bob): said on the page and in its log
    settings = settings.replace(gateway_auth=settings.gateway_auth or "demo")
    env = {**process_environment(), **settings.child_env()}
    proc = subprocess.Popen([sys.executable, "-m", "apps.gateway", "--port", port], env=env)
    mode = "DEMO MODE, no authentication" if settings.gateway_auth == "demo" else settings.gateway_auth
    print(f"[demo] explore it: http://127.0.0.1:{port}/  (users alice and bob; {mode}; Ctrl-C to stop)")
    try:
        while proc.poll() is None:
            await asyncio.sleep(1.0)
    finally:
        proc.terminate()
        proc.wait(10)


async def run_demo(
    settings: Settings,
    folder: Path | None,
    *,
    k_clusters: int | None = None,
    query: str = "a printer",
    subject: str | None = None,
    likes: dict[str, list[str]] | None = None,
    keep_workers: bool = False,
    web: bool = False,
) -> int:
    from consumers.runner import Workers
    from imgsearch.index.opensearch import OpenSearchIndex
    from imgsearch.kafka.admin import ensure_topics
    from jobs.clusters import train_from_folder
    from jobs.ingest import cmd_ingest, image_files, image_id_for
    from producers import EventPublisher, SearchClient, SearchTimeout
    from schemas.events import EventType, Interaction

    # SIGTERM (e.g. `kill`, a service manager) stops the demo like Ctrl-C: the main task is
    # cancelled, so the finally blocks stop the workers and the gateway instead of orphaning them
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)

    folder = (folder or default_folder(settings)).resolve()
    files = image_files(folder) if folder.is_dir() else []
    if not files:
        print(f"no images under {folder}: run scripts/setup_data.sh (or pass --folder)", file=sys.stderr)
        return 2
    # the demo's own topics, consumer groups and index unless the environment names others; the
    # workers and the gateway get these settings as their environment (settings.child_env())
    demo_defaults = {"topic_prefix": DEMO_PREFIX, "app_prefix": DEMO_PREFIX, "index_name": f"{DEMO_PREFIX}-images"}
    settings = settings.replace(
        **{name: value for name, value in demo_defaults.items() if name not in settings.model_fields_set},
        allowed_uri_roots=str(folder),
    )
    ids = [image_id_for(p, folder) for p in files]
    styles = Counter(labels_from_path(i)[0] for i in ids)
    print(f"[demo] {len(ids)} images in {len(styles)} styles from {folder}")
    print(
        f"[demo] Kafka {redact_url(settings.kafka_bootstrap)}, OpenSearch {redact_url(settings.opensearch_url)}, "
        f"index {settings.index_name}, topics {DEMO_PREFIX}.*"
    )

    print("[demo] 1/6 resetting the demo's topics and index")
    await reset_demo_state(settings)
    await ensure_topics(settings.kafka_bootstrap, settings.topics.all_shared(), settings.partitions, settings=settings)

    likes = likes or dict(DEFAULT_LIKES)
    missing = sorted({s for styles_ in likes.values() for s in styles_} - set(styles))
    if missing:
        print(f"[demo] styles {missing} are not in {folder} (it has {sorted(styles)}): pass --likes", file=sys.stderr)
        return 2
    subject = subject or query.split()[-1]
    k_clusters = k_clusters or len(styles)
    print(f"[demo] 2/6 training style clusters (k={k_clusters}) on the images' style vectors")
    await train_from_folder(settings, folder, k_clusters, "style")

    print("[demo] 3/6 starting the workers (embedder, interactions, query)")
    workers = Workers(Path(settings.data_dir) / "demo-logs", settings.child_env())
    for role in ("embedder", "interactions", "query"):
        workers.start(role)
    try:
        print("[demo] 4/6 ingesting the images through Kafka")
        await cmd_ingest(settings, folder, inline=False)
        idx = OpenSearchIndex(settings.opensearch_url, settings.index_name, settings=settings)
        t0 = time.monotonic()
        with progress_bar(len(ids), "indexed", "img") as bar:
            while bar.n < len(ids):
                workers.check_alive()
                try:
                    n = await idx.searchable_count()
                except Exception as exc:  # OpenSearch busy: the workers retry, so do we
                    log.debug("count failed: %s", exc)
                    n = bar.n
                bar.update(max(0, n - bar.n))
                if time.monotonic() - t0 > 900:
                    raise TimeoutError("ingest did not finish in 15 minutes; see the worker logs")
                if bar.n < len(ids):
                    await asyncio.sleep(1.0)
        await idx.close()

        print(
            "[demo] 5/6 interactions: "
            + ", ".join(f"{user} likes {' and '.join(styles_)}" for user, styles_ in likes.items())
            + f" (on pictures of anything but {subject})"
        )
        rng = random.Random(7)
        async with EventPublisher(settings.kafka_bootstrap, topics=settings.topics, settings=settings) as pub:
            for user, liked in likes.items():
                mine = [i for i in ids if labels_from_path(i)[0] in liked and labels_from_path(i)[1] != subject]
                for image_id in rng.sample(mine, min(12, len(mine))):
                    etype = rng.choice([EventType.VIEW, EventType.FAVORITE, EventType.DOWNLOAD])
                    await pub.publish_interaction(Interaction(user_id=user, image_id=image_id, event_type=etype))

        print(f"[demo] 6/6 the same query for both users: {query!r}")
        async with SearchClient(settings.kafka_bootstrap, topics=settings.topics, settings=settings) as client:
            results: dict[str, SearchResponse] = {}
            deadline = time.monotonic() + 60
            for user in [*likes, "new-user"]:
                while True:
                    try:
                        resp = await client.search(user, query, k=10, timeout_s=10)
                    except SearchTimeout:
                        if time.monotonic() > deadline:
                            raise
                        continue
                    if resp.personalized or user not in likes or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.5)  # the profile is updating from the stream
                results[user] = resp
                print_ranking(user, resp)
        page = write_report(folder, query, subject, results, likes, ids)
        print(f"\n[demo] results side by side: {page} and {OUT_DIR / 'results.png'}")
        print(f"[demo] worker logs: {workers.log_dir}")
        if web:
            await serve(settings)
        else:
            print("[demo] to explore the results in a browser: bash scripts/demo.sh --web")
    finally:
        if not keep_workers:
            workers.stop_all()
    return 0
