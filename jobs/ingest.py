"""Publishing a folder of images as new-image events: ``imgsearch ingest``, the demo, the tests' fixtures."""

from __future__ import annotations

from pathlib import Path

from imgsearch.config import Settings

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp"}


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def image_id_for(path: Path, root: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    return "".join(c if c.isalnum() or c in "._-/" else "_" for c in str(rel))[:128]


async def cmd_ingest(settings: Settings, folder: Path, inline: bool) -> int:
    from producers.publisher import EventPublisher
    from schemas.events import NewImage

    files = image_files(folder)
    async with EventPublisher(settings.kafka_bootstrap, topics=settings.topics, settings=settings) as pub:
        events = []
        for path in files:
            meta = {"file": path.name, "folder": path.parent.name}
            iid = image_id_for(path, folder)
            events.append(
                NewImage.inline(iid, path.read_bytes(), metadata=meta)
                if inline
                else NewImage(image_id=iid, source_uri=path.resolve().as_uri(), metadata=meta)
            )
        n = await pub.publish_images(events)
    print(f"published {n} new-image events from {folder}")
    return n
