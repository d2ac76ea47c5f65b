"""Security on real secured servers (issue 7): a second Kafka that only speaks SASL_SSL (SCRAM-SHA-512,
a private CA) with ACLs and deny-by-default, and a second OpenSearch with the security plugin (TLS,
basic auth, roles), both started by ``IMGSEARCH_SECURE=1 scripts/engines.sh`` with fresh random
credentials. The whole pipeline runs on them configured only by environment variables, and each
principal is confined to what its role needs: one search client cannot read another's replies.
The pipeline's settings are a ``Settings`` object (the workers get its ``child_env()``); each
principal's in-process clients get the ``Settings`` its connection variables describe
(``as_principal``), as a deployment's would.)"""

from __future__ import annotations

import asyncio
import base64
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError, TopicAuthorizationFailedError

from consumers.runner import Workers
from imgsearch.config import REPO_ROOT, Settings, process_environment
from imgsearch.connections import kafka_security
from imgsearch.index.opensearch import OpenSearchIndex
from imgsearch.kafka.admin import ensure_topics
from producers import EventPublisher, SearchClient
from schemas.events import DeadLetter, NewImage, SearchRequest, SearchResponse
from schemas.topics import Topics
from tests.integration.faults_support import read_to_end
from tests.support import search_until_ready, synthetic_folder, wait_for

ENGINES = str(REPO_ROOT / "scripts" / "engines.sh")
# the ACLs are granted on the default prefix: the pipeline's names
TOPICS = Topics(prefix="imgsearch")


@dataclass
class Secure:
    script_env: dict[str, str]  # how engines.sh addresses the secured instance
    secrets: Path
    worker: dict[str, str]  # client settings per principal, as `engines.sh env <principal>` prints them
    admin: dict[str, str]
    alice: dict[str, str]
    bob: dict[str, str]
    upstream: dict[str, str]

    @property
    def bootstrap(self) -> str:
        return self.worker["KAFKA_BOOTSTRAP"]

    def password(self, principal: str) -> str:
        return (self.secrets / f"{principal}.password").read_text().strip()


def as_principal(env: dict[str, str]) -> Settings:
    """The settings a client configured by ``env`` (a principal's variables) has."""
    return Settings.from_env(env)


def _engines(env: dict[str, str], *args: str) -> str:
    return subprocess.run(["bash", ENGINES, *args], env=env, check=True, capture_output=True, text=True).stdout


def _client_env(script_env: dict[str, str], principal: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in _engines(script_env, "env", principal).splitlines() if "=" in line)


@pytest.fixture(scope="module")
def secure() -> Iterator[Secure]:
    env = process_environment()  # engines.sh's own variables (ports, data directory) for the secured pair
    data = Path(env.get("IMGSEARCH_SECURE_DATA", str(REPO_ROOT / ".engines-secure")))
    script_env = {
        **{k: v for k, v in env.items() if not k.startswith(("KAFKA_", "OPENSEARCH_", "IMGSEARCH_"))},
        "IMGSEARCH_SECURE": "1",
        "IMGSEARCH_DATA": str(data),
        # the same download cache as the plain pair (OpenSearch's security plugin is fetched once)
        **({"IMGSEARCH_CACHE": env["IMGSEARCH_CACHE"]} if "IMGSEARCH_CACHE" in env else {}),
        "SECURE_KAFKA_PORT": env.get("IMGSEARCH_SECURE_KAFKA_PORT", "9094"),
        "SECURE_KAFKA_CONTROLLER_PORT": env.get("IMGSEARCH_SECURE_CONTROLLER_PORT", "9095"),
        "SECURE_OPENSEARCH_PORT": env.get("IMGSEARCH_SECURE_OPENSEARCH_PORT", "9201"),
        "SECURE_OPENSEARCH_TRANSPORT_PORT": env.get("IMGSEARCH_SECURE_TRANSPORT_PORT", "9301"),
    }
    _engines(script_env, "reset")  # fresh CA, passwords and ACLs every run
    subprocess.run(["bash", ENGINES, "start"], env=script_env, check=True)
    try:
        _engines(script_env, "grant", "search-client", "alice")
        _engines(script_env, "grant", "search-client", "bob")
        _engines(script_env, "grant", "publisher", "upstream")
        yield Secure(
            script_env,
            data / "secrets",
            _client_env(script_env, "imgsearch-worker"),
            _client_env(script_env, "admin"),
            _client_env(script_env, "alice"),
            _client_env(script_env, "bob"),
            _client_env(script_env, "upstream"),
        )
    finally:
        subprocess.run(["bash", ENGINES, "stop"], env=script_env, check=False)


async def refused(what: str, coro, timeout: float = 20) -> KafkaError | Exception:
    """The operation fails (an exception, not a hang) and says why."""
    try:
        await asyncio.wait_for(coro, timeout)
    except TimeoutError:
        raise AssertionError(f"{what}: hung for {timeout}s instead of failing") from None
    except Exception as exc:
        return exc
    raise AssertionError(f"{what}: was allowed")


async def _producer_start(env: dict[str, str], bootstrap: str) -> AIOKafkaProducer:
    p = AIOKafkaProducer(**kafka_security(as_principal(env)), bootstrap_servers=bootstrap, request_timeout_ms=8000)
    try:
        await p.start()
    except BaseException:
        await p.stop()
        raise
    return p


async def test_kafka_refuses_plaintext_wrong_passwords_and_untrusted_servers(
    secure: Secure, caplog: pytest.LogCaptureFixture
):
    """Each refusal fails fast, and the client's log says why (aiokafka reports the cause there and
    raises 'Unable to bootstrap')."""
    b = secure.bootstrap
    plain = await refused("a PLAINTEXT client on the SASL_SSL listener", _producer_start({}, b))
    assert isinstance(plain, KafkaError), repr(plain)
    caplog.clear()
    bad = await refused(
        "SCRAM with a wrong password",
        _producer_start({**secure.alice, "KAFKA_SASL_PASSWORD_FILE": "", "KAFKA_SASL_PASSWORD": "not-the-password"}, b),
    )
    assert isinstance(bad, KafkaError), repr(bad)
    assert "SaslAuthenticationFailed" in caplog.text and "invalid credentials" in caplog.text, caplog.text
    caplog.clear()
    untrusted = await refused(  # the system CAs do not vouch for the instance's private CA
        "TLS without the instance's CA", _producer_start({**secure.alice, "KAFKA_SSL_CAFILE": ""}, b)
    )
    assert isinstance(untrusted, KafkaError), repr(untrusted)
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text, caplog.text
    good = await _producer_start(secure.alice, b)  # the same client with the right settings
    await good.stop()


async def _read_attempt(
    env: dict[str, str], bootstrap: str, topic: str, seconds: float = 4
) -> tuple[list[bytes], str | None]:
    """What a consumer with these credentials gets from the topic in a few seconds, and the
    authorization error if the fetch raised one (when the principal may not even describe the topic,
    aiokafka only logs that it is not authorized)."""
    c = AIOKafkaConsumer(
        **kafka_security(as_principal(env)),
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await c.start()
    got: list[bytes] = []
    denied: str | None = None
    try:
        c.assign([TopicPartition(topic, p) for p in range(2)])
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            try:
                batch = await c.getmany(timeout_ms=500)
            except TopicAuthorizationFailedError as exc:
                denied = str(exc)
                break
            for msgs in batch.values():
                got.extend(m.value or b"" for m in msgs)
    finally:
        await c.stop()
    return got, denied


async def assert_cannot_read(secure: Secure, env: dict[str, str], topic: str, caplog: pytest.LogCaptureFixture) -> None:
    """A marker the admin wrote and can read back is invisible to ``env``, and the broker says why."""
    marker = f"marker-{uuid.uuid4().hex}".encode()
    await _send(secure.admin, secure.bootstrap, topic, marker)
    control, _ = await _read_attempt(secure.admin, secure.bootstrap, topic)
    assert marker in control
    caplog.clear()
    got, denied = await _read_attempt(env, secure.bootstrap, topic)
    assert marker not in got
    assert denied or f"Topic {topic} is not authorized" in caplog.text, caplog.text[-2000:]


async def _send(env: dict[str, str], bootstrap: str, topic: str, value: bytes) -> None:
    p = await _producer_start(env, bootstrap)
    try:
        await p.send_and_wait(topic, value)
    finally:
        await p.stop()


def _authz(exc: BaseException) -> bool:
    return "authorization" in f"{type(exc).__name__} {exc}".lower()


async def _client(env: dict[str, str], bootstrap: str, client_id: str | None = None) -> SearchClient:
    c = SearchClient(bootstrap, client_id=client_id, topics=TOPICS, settings=as_principal(env))
    await c.start()
    return c


async def test_acls_confine_every_principal_to_its_role(secure: Secure, caplog: pytest.LogCaptureFixture):
    b = secure.bootstrap
    await ensure_topics_as(secure.worker, b)
    bob = await _client(secure.bob, b)
    try:
        assert bob.client_id.startswith("bob.")  # the principal names its reply topics
        # alice can neither read bob's replies ...
        await assert_cannot_read(secure, secure.alice, bob.reply_topic, caplog)
        # ... nor make a reply topic in bob's namespace
        exc = await refused("alice creating a reply topic of bob's", _client(secure.alice, b, client_id="bob.mine"))
        assert _authz(exc), repr(exc)
        # nor read the requests of others (they carry user ids and reply topics)
        await assert_cannot_read(secure, secure.alice, TOPICS.search_requests().name, caplog)
        # nor publish images; the upstream app cannot search or read what it published
        exc = await refused("alice publishing an image", _send(secure.alice, b, TOPICS.new_images().name, b"{}"))
        assert _authz(exc), repr(exc)
        exc = await refused(
            "upstream sending a search", _send(secure.upstream, b, TOPICS.search_requests().name, b"{}")
        )
        assert _authz(exc), repr(exc)
        await assert_cannot_read(secure, secure.upstream, TOPICS.new_images().name, caplog)
        # what each role needs works
        alice = await _client(secure.alice, b)
        await alice.stop()
        await _send(secure.upstream, b, TOPICS.interactions().name, b"not json: dead-lettered later")
    finally:
        await bob.stop()


async def ensure_topics_as(env: dict[str, str], bootstrap: str) -> None:
    await ensure_topics(bootstrap, TOPICS.all_shared(), 2, settings=as_principal(env))


async def test_opensearch_requires_tls_credentials_and_confines_the_service_user(secure: Secure):
    url = secure.worker["OPENSEARCH_URL"]
    assert url.startswith("https://")
    index = f"imgsearch-sec-{uuid.uuid4().hex[:6]}"
    anonymous = as_principal({"OPENSEARCH_AUTH": "none", "OPENSEARCH_CA_CERTS": secure.worker["OPENSEARCH_CA_CERTS"]})
    anon = OpenSearchIndex(url, index, settings=anonymous)
    try:
        exc = await refused("an anonymous request", anon.count())
        assert "401" in str(exc) or "Unauthorized" in str(exc), repr(exc)
    finally:
        await anon.close()
    untrusted = OpenSearchIndex(url, index, settings=as_principal({**secure.worker, "OPENSEARCH_CA_CERTS": ""}))
    try:
        exc = await refused("TLS without the instance's CA", untrusted.count())
        assert "certificate" in str(exc).lower() or "ssl" in type(exc).__name__.lower(), repr(exc)
    finally:
        await untrusted.close()
    worker = as_principal(secure.worker)
    own = OpenSearchIndex(url, index, settings=worker)
    other = OpenSearchIndex(url, f"other-{index}", settings=worker)
    try:
        await own.ensure(8, "test-model")
        assert await own.count() == 0
        exc = await refused("the service user creating an index outside imgsearch*", other.ensure(8, "test-model"))
        assert "403" in str(exc) or "no permissions" in str(exc), repr(exc)
    finally:
        await own.delete_index()
        await own.close()
        await other.close()


async def test_pipeline_runs_secured_and_replies_reach_only_their_client(secure: Secure, tmp_path: Path):
    """Embedder, interactions and query workers on SASL_SSL + HTTPS with basic auth, configured only by
    the environment; images from the publisher principal, searches from two clients."""
    b = secure.bootstrap
    image_dir = tmp_path / "images"
    synthetic_folder(image_dir, variants=2)
    # the worker principal's connection variables and the pipeline's settings (on the default
    # prefixes, which the ACLs are granted on)
    settings = Settings.from_env(
        secure.worker,
        topic_prefix="imgsearch",
        app_prefix="imgsearch",
        index_name="imgsearch-sec-images",
        data_dir=str(tmp_path / "data"),
        embedder="hash",
        style="handcrafted",
        partitions=2,
        allowed_uri_roots=str(image_dir),
        log_level="INFO",
    )
    worker_env = {**secure.worker, **settings.child_env()}
    workers = Workers(tmp_path / "logs", worker_env)
    await ensure_topics(b, settings.topics.all_shared(), 2, settings=settings)  # settings: the worker principal's
    from jobs.clusters import train_from_folder

    await train_from_folder(settings, image_dir, k=3, vector_kind="style")
    for role in ("embedder", "interactions", "query"):
        workers.start(role)
    payloads: list[str] = []
    alice = bob = None
    try:
        async with EventPublisher(b, topics=settings.topics, settings=as_principal(secure.upstream)) as pub:
            events = []
            for path in sorted(image_dir.rglob("*.png")):
                data = path.read_bytes()
                payloads.append(base64.b64encode(data).decode())
                events.append(NewImage.inline(f"sec-{path.parent.name}-{path.stem}", data))
            await pub.publish_images(events)
        index = OpenSearchIndex(settings.opensearch_url, settings.index_name, settings=settings)
        try:

            async def all_indexed() -> bool:
                try:
                    await index.refresh()
                    return await index.count() >= len(events)
                except Exception:
                    return False

            await wait_for(all_indexed, 120, f"{len(events)} images indexed over TLS", workers=workers)
        finally:
            await index.close()

        alice, bob = await _client(secure.alice, b), await _client(secure.bob, b)
        ra = await search_until_ready(alice, user_id="alice-user", text="circle", k=5)
        rb = await bob.search("bob-user", image_b64=payloads[0], k=5)
        assert len(ra.hits) == 5 and len(rb.hits) == 5 and rb.hits[0].image_id.startswith("sec-")

        # alice names bob's reply topic: the worker answers there (it cannot know who sent the
        # request), but bob's client knows no such correlation id and drops it, while bob's own
        # searches are answered as before; alice cannot read it (test above)
        foreign = SearchRequest(user_id="alice-user", text="square", k=3, reply_topic=bob.reply_topic)
        await _send(secure.alice, b, settings.topics.search_requests().name, foreign.to_bytes())
        await wait_for(
            lambda: _contains(secure.admin, b, bob.reply_topic, foreign.request_id),
            30,
            "the worker's answer to alice's request in bob's topic",
        )
        assert foreign.request_id not in bob._pending  # read and dropped, nothing waits on it
        again = await bob.search("bob-user", text="square", k=3)
        assert again.request_id != foreign.request_id and len(again.hits) == 3

        # a request naming a topic that is not a reply topic is refused, not answered there
        before = await read_all(secure.admin, b, settings.topics.new_images().name, lambda v: v)
        sneaky = SearchRequest(user_id="alice-user", text="bar", k=3, reply_topic=settings.topics.new_images().name)
        await _send(secure.alice, b, settings.topics.search_requests().name, sneaky.to_bytes())

        async def dead_lettered() -> bool:
            dl = await read_all(secure.admin, b, settings.topics.dead_letters().name, DeadLetter.from_bytes)
            return any(
                d.reason_code == "reply_topic_not_allowed" and sneaky.request_id.encode() in d.original_bytes()
                for d in dl
            )

        await wait_for(dead_lettered, 30, "the refused reply topic on the dead-letter topic")
        after = await read_all(secure.admin, b, settings.topics.new_images().name, lambda v: v)
        assert len(after) == len(before)
    finally:
        for c in (alice, bob):
            if c is not None:
                await c.stop()
        workers.stop_all()

    # nothing secret or heavy in the logs: no password of any principal, no image payload
    logs = "".join(f.read_text(errors="replace") for f in sorted((tmp_path / "logs").glob("*.log")))
    for role in ("embedder", "interactions", "query"):
        assert f"starting {role} worker" in logs, f"no start-up line of the {role} worker in its log"
    for principal in ("admin", "imgsearch-worker", "alice", "bob", "upstream"):
        assert secure.password(principal) not in logs, f"{principal}'s password in a worker log"
    for p in payloads:
        assert p[:64] not in logs, "an image payload in a worker log"


async def read_all(env: dict[str, str], bootstrap: str, topic: str, decode) -> list:
    return [decode(m.value) for m in await read_to_end(bootstrap, topic, settings=as_principal(env))]


async def _contains(env: dict[str, str], bootstrap: str, topic: str, request_id: str) -> bool:
    replies = await read_all(env, bootstrap, topic, lambda v: SearchResponse.from_bytes(v).request_id)
    return request_id in replies
