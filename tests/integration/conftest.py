"""Integration fixtures: the real Kafka and OpenSearch (started by scripts/engines.sh if needed),
and a real pipeline of worker processes, isolated per test module by a unique topic prefix, app
prefix (consumer groups) and index name."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from PIL import Image, ImageDraw

from imgsearch.config import Settings
from imgsearch.index.opensearch import OpenSearchIndex
from imgsearch.kafka_admin import ensure_topics
from imgsearch.runner import Workers, ensure_engines
from producers import EventPublisher, SearchClient, SearchTimeout
from schemas import topics
from schemas.events import EventType, Interaction, SearchResponse

STYLES = {
    # style: (background, palette, outline only)
    "neon": ((10, 10, 30), [(255, 0, 200), (0, 255, 240), (255, 240, 0)], True),
    "pastel": ((255, 255, 255), [(250, 190, 200), (190, 220, 250), (200, 240, 200)], False),
    "mono": ((235, 235, 235), [(40, 40, 40), (90, 90, 90), (140, 140, 140)], False),
}
SUBJECTS = ["circle", "square", "triangle", "bar"]


def draw(style: str, subject: str, variant: int) -> bytes:
    bg, palette, outline = STYLES[style]
    im = Image.new("RGB", (96, 96), bg)
    d = ImageDraw.Draw(im)
    colour = palette[variant % len(palette)]
    o = 4 * variant
    box = [14 + o, 14 + o // 2, 82 - o // 2, 82 - o]
    kw = {"outline": colour, "width": 5} if outline else {"fill": colour}
    if subject == "circle":
        d.ellipse(box, **kw)
    elif subject == "square":
        d.rectangle(box, **kw)
    elif subject == "triangle":
        d.polygon([(48, box[1]), (box[0], box[3]), (box[2], box[3])], **kw)
    else:
        d.rectangle([box[0], 40, box[2], 56], **kw)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def synthetic_folder(root: Path, variants: int = 3) -> dict[str, str]:
    """Writes style/subject/variant PNGs; returns image id -> style."""
    labels = {}
    for style in STYLES:
        for subject in SUBJECTS:
            for v in range(variants):
                path = root / style / f"{subject}-{v}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(draw(style, subject, v))
                labels[f"{style}/{subject}-{v}"] = style
    return labels


@contextlib.contextmanager
def environment(extra: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration (workers inherit the test process's environment)."""
    old = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def engines() -> dict[str, str]:
    return ensure_engines()


@dataclass
class Pipeline:
    settings: Settings
    env: dict[str, str]
    workers: Workers
    image_dir: Path
    labels: dict[str, str]

    def index(self) -> OpenSearchIndex:
        return OpenSearchIndex(self.settings.opensearch_url, self.settings.index_name)


def _isolated_env(
    engines: dict[str, str], tmp: Path, image_dir: Path, embedder: str, style: str = "handcrafted"
) -> dict[str, str]:
    tag = f"t{uuid.uuid4().hex[:8]}"
    return {
        **engines,
        "IMGSEARCH_TOPIC_PREFIX": tag,
        "IMGSEARCH_APP_PREFIX": tag,
        "IMGSEARCH_INDEX": f"{tag}-images",
        "IMGSEARCH_DATA": str(tmp / "data"),
        "IMGSEARCH_EMBEDDER": embedder,
        "IMGSEARCH_STYLE": style,
        "IMGSEARCH_ALLOWED_URI_ROOTS": str(image_dir),
        "IMGSEARCH_UNKNOWN_IMAGE_WAIT_S": "2",
        "IMGSEARCH_PARTITIONS": "2",
        "IMGSEARCH_LOG_LEVEL": "INFO",
    }


@pytest.fixture(scope="module")
def pipeline_env(
    request: pytest.FixtureRequest, engines: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dict[str, str], Path]]:
    tmp = tmp_path_factory.mktemp("pipeline")
    image_dir = tmp / "images"
    # a test module may set EMBEDDER = "conse" and STYLE = "auto"; the defaults are the fast hash
    # test embedder and the handcrafted style descriptor. Its extra_env(tmp) may add settings
    # (e.g. model files it writes into tmp).
    module = request.module
    env = _isolated_env(
        engines, tmp, image_dir, getattr(module, "EMBEDDER", "hash"), getattr(module, "STYLE", "handcrafted")
    )
    if hasattr(module, "extra_env"):
        env.update(module.extra_env(tmp))
    with environment(env):
        yield env, tmp


async def wait_for(predicate, timeout: float, what: str, interval: float = 0.3, workers: Workers | None = None):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if workers is not None:
            workers.check_alive()
        last = await predicate()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


async def read_topic(bootstrap: str, topic: str, *, min_count: int = 1, timeout: float = 30.0) -> list:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    out: list = []
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(out) < min_count:
            batch = await consumer.getmany(timeout_ms=500)
            for msgs in batch.values():
                out.extend(msgs)
    finally:
        await consumer.stop()
    return out


@pytest.fixture(scope="module")
async def pipeline(request: pytest.FixtureRequest, pipeline_env) -> AsyncIterator[Pipeline]:
    env, tmp = pipeline_env
    settings = Settings()
    image_dir = tmp / "images"
    labels = getattr(request.module, "make_images", synthetic_folder)(image_dir)
    await ensure_topics(settings.kafka_bootstrap, topics.all_shared(), settings.partitions)
    from imgsearch.clusters import train_from_folder

    await train_from_folder(settings, image_dir, k=getattr(request.module, "K", 3), vector_kind="style")
    workers = Workers(tmp / "logs", env)
    for role in ("embedder", "interactions", "query"):
        workers.start(role)
    p = Pipeline(settings, env, workers, image_dir, labels)
    try:
        yield p
    finally:
        workers.stop_all()
        idx = p.index()
        await idx.delete_index()
        await idx.close()


async def ingest_all(p: Pipeline) -> int:
    from imgsearch.cli import cmd_ingest

    n = await cmd_ingest(p.settings, p.image_dir, inline=False)
    idx = p.index()
    try:

        async def count() -> bool:
            try:
                return await idx.searchable_count() >= n
            except Exception:
                return False

        await wait_for(count, 120, f"{n} images indexed", workers=p.workers)
    finally:
        await idx.close()
    return n


async def search_until_ready(client: SearchClient, **kw):
    """The first search waits for the query worker to join its group."""
    deadline = time.monotonic() + 90
    while True:
        try:
            return await client.search(timeout_s=5, **kw)
        except SearchTimeout:
            if time.monotonic() > deadline:
                raise


async def teach_user(
    pipeline: Pipeline, client: SearchClient, user: str, history: list[tuple[str, EventType]], marker: str
) -> None:
    """Publish `history` (image id, event type) for `user`, then a marker view; return when the query
    worker has applied the marker (a user's events are applied in order)."""
    async with EventPublisher(pipeline.settings.kafka_bootstrap) as pub:
        for n, (image_id, kind) in enumerate(history):
            await pub.publish_interaction(
                Interaction(user_id=user, image_id=image_id, event_type=kind, event_id=f"{user}-{n}")
            )
        await pub.publish_interaction(
            Interaction(user_id=user, image_id=marker, event_type=EventType.VIEW, event_id=f"{user}-marker")
        )
    marker_png = base64.b64encode((pipeline.image_dir / f"{marker}.png").read_bytes()).decode()

    async def applied() -> SearchResponse | None:
        r = await client.search(user, image_b64=marker_png, k=10, personalization_weight=0.1, timeout_s=10)
        return r if any(h.image_id == marker and f"view:{marker}" in h.drivers for h in r.hits) else None

    await wait_for(applied, 60, f"{user}'s interactions applied by the query worker")
