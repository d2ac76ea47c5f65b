"""Topic creation: partition counts and compaction, from the topic specs in schemas.topics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from imgsearch.config import Settings, default_settings
from imgsearch.connections import kafka_security
from schemas.limits import MAX_MESSAGE_BYTES
from schemas.topics import TopicSpec

log = logging.getLogger(__name__)


def topic_configs(spec: TopicSpec, min_insync_replicas: int = 0) -> dict[str, str]:
    # every topic we create takes one event of the largest allowed size (schemas/limits.py); left at
    # the broker default (~1 MB), a 942 KB query image was refused deep in the producer (HTTP 500)
    configs: dict[str, str] = {"max.message.bytes": str(MAX_MESSAGE_BYTES)}
    if min_insync_replicas > 0:  # 0: the broker's default
        configs["min.insync.replicas"] = str(min_insync_replicas)
    if spec.compacted:
        configs["cleanup.policy"] = "compact"
        configs["max.message.bytes"] = str(16 * 2**20)  # a model with 100 × 1024 floats is a few MB
    if spec.retain_forever:
        configs["retention.ms"] = "-1"
        configs["retention.bytes"] = "-1"
    elif spec.retention_ms is not None:
        configs["retention.ms"] = str(spec.retention_ms)
    if spec.max_compaction_lag_ms is not None:
        configs["max.compaction.lag.ms"] = str(spec.max_compaction_lag_ms)
    return configs


async def ensure_topics(
    bootstrap: str,
    specs: Sequence[TopicSpec],
    default_partitions: int,
    visible_within_s: float = 30.0,
    settings: Settings | None = None,
) -> list[str]:
    """Create the topics that do not exist yet and wait until the broker's metadata lists them;
    returns the names created. Replication factor, ``min.insync.replicas`` and the connection come
    from ``settings`` (default: the built-in defaults, ``default_settings()``: one replica, PLAINTEXT);
    topics that exist already are left as they are.

    CreateTopics answers once the controller has the topic; the broker's metadata can lag behind. A
    faust worker that subscribes in that gap does not see the topic until its next metadata refresh:
    a table whose changelog was missing made every update crash (PartitionsMismatch).
    """
    settings = settings or default_settings()
    admin = AIOKafkaAdminClient(**kafka_security(settings), bootstrap_servers=bootstrap, client_id="imgsearch-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(
                name=s.name,
                num_partitions=s.partitions or default_partitions,
                replication_factor=settings.replication_factor,
                topic_configs=topic_configs(s, settings.min_insync_replicas),
            )
            for s in specs
            if s.name not in existing
        ]
        await _warn_small_limits(admin, [s for s in specs if s.name in existing])
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):  # created concurrently elsewhere
                response = await admin.create_topics(new, timeout_ms=30_000)
                raise_topic_errors(response)
            log.info("created topics: %s", ", ".join(t.name for t in new))
            deadline = time.monotonic() + visible_within_s
            while missing := {t.name for t in new} - set(await admin.list_topics()):
                if time.monotonic() > deadline:
                    raise KafkaError(
                        f"topics not in the broker's metadata {visible_within_s:g}s after creation: {missing}"
                    )
                await asyncio.sleep(0.1)
        return [t.name for t in new]
    finally:
        await admin.close()


async def _warn_small_limits(admin: AIOKafkaAdminClient, specs: Sequence[TopicSpec]) -> None:
    """Topics made before the size-limit chain (or by hand) may keep a smaller ``max.message.bytes``:
    say so, with the fix (only creation is automatic; an operator's topic configs are not rewritten)."""
    if not specs:
        return
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, s.name, configs={"max.message.bytes": ""}) for s in specs]
        )
        wanted = {s.name: int(topic_configs(s)["max.message.bytes"]) for s in specs}
        for response in responses:
            for resource in response.resources:
                name, entries = resource[3], resource[4]
                for entry in entries:
                    if entry[0] == "max.message.bytes" and name in wanted and int(entry[1]) < wanted[name]:
                        log.warning(
                            "topic %s takes records of at most %s bytes, less than the %d an event may need "
                            "(schemas/limits.py): kafka-configs --alter --entity-type topics --entity-name %s "
                            "--add-config max.message.bytes=%d",
                            name,
                            entry[1],
                            wanted[name],
                            name,
                            wanted[name],
                        )
    except Exception as exc:  # e.g. not allowed to describe configs: the check is advice only
        log.debug("could not check max.message.bytes of existing topics: %s", exc)


def raise_topic_errors(response: object) -> None:
    """CreateTopics answers per topic; a refusal (not authorized, invalid config, ...) must not pass
    silently, or the caller would wait on a topic that never comes."""
    failures: list[tuple[int, str]] = []
    for entry in getattr(response, "topic_errors", ()):
        name, code = entry[0], entry[1]
        message = entry[2] if len(entry) > 2 and entry[2] else ""
        if code and code != TopicAlreadyExistsError.errno:
            failures.append((code, f"{name}: {for_code(code).__name__} {message}".strip()))
    if failures:
        error: type[KafkaError] = for_code(failures[0][0])
        raise error("could not create topics: " + "; ".join(text for _, text in failures))


async def delete_topics(bootstrap: str, names: Sequence[str], settings: Settings | None = None) -> None:
    """Delete those of ``names`` that exist (connecting as ``settings`` say; default: PLAINTEXT)."""
    security = kafka_security(settings or default_settings())
    admin = AIOKafkaAdminClient(**security, bootstrap_servers=bootstrap, client_id="imgsearch-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [n for n in names if n in existing]
        if doomed:
            await admin.delete_topics(doomed, timeout_ms=30_000)
    finally:
        await admin.close()
