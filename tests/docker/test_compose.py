"""The Docker path end to end (issue 18): `docker-compose up` the whole stack of docker-compose.yml
(Kafka, OpenSearch + k-NN, the topics job, the three workers, the gateway) on the host network
(docker-compose.host.yml, every port on 127.0.0.1) from the locally built images, wait until every
container is healthy, run the demo's flow against it — train style clusters and ingest a folder through
Kafka (one-off containers), wait until it is searchable, send interactions through the gateway, search
the same query as two users and a new one — then `docker-compose down` and check nothing is left."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from imgsearch.config import REPO_ROOT
from tests.docker.conftest import container_rlimits, docker_ports, run, world_readable
from tests.support import synthetic_folder

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1800)]  # a cold image build is minutes

SERVICES = ("kafka", "opensearch", "embedder", "interactions", "query", "gateway")
INDEX = "imgsearch-images"  # the compose stack's default index


@dataclass
class Stack:
    project: str
    env: dict[str, str]
    labels: dict[str, str]
    down_done: bool = False

    def compose(self, *args: str, timeout: float = 600, check: bool = True) -> str:
        cmd = ["bash", str(REPO_ROOT / "scripts" / "compose_host.sh"), "-p", self.project, *args]
        return run(cmd, env=self.env, timeout=timeout, check=check)

    def container(self, service: str) -> str:
        return self.compose("ps", "-q", service).strip()

    def url(self, port: str, path: str) -> str:
        return f"http://127.0.0.1:{self.env[port]}{path}"

    def down(self) -> None:
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "20", timeout=180)
        self.down_done = True


def http(url: str, body: dict[str, Any] | None = None, timeout: float = 10) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=timeout) as r:  # loopback only
        return json.loads(r.read())


def inspect(container: str) -> dict[str, Any]:
    return json.loads(run(["docker", "inspect", container]))[0]


def wait(predicate: Any, timeout: float, what: str, interval: float = 2.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except (OSError, ValueError, KeyError) as exc:  # not up yet
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@pytest.fixture(scope="module")
def stack(docker_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    images = tmp_path_factory.mktemp("compose-images")
    labels = synthetic_folder(images)
    world_readable(images)
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP", "OPENSEARCH_URL")}
    env.update(docker_images)
    env.update(docker_ports())
    env.update({"IMGSEARCH_IMAGES": str(images), "IMGSEARCH_GATEWAY_AUTH": "demo", "IMGSEARCH_EMBEDDER": "auto"})
    env.update(container_rlimits())
    s = Stack(f"imgsearch-test-{uuid.uuid4().hex[:8]}", env, labels)
    env["COMPOSE_HOST_FILE"] = str(tmp_path_factory.mktemp("compose") / "compose-host.yml")
    t0 = time.monotonic()
    try:
        s.compose("up", "-d", "--no-build")  # compose v1 waits here for the dependencies' health
        print(f"\n[docker] compose up -d: {time.monotonic() - t0:.0f}s")
        yield s
    finally:
        if not s.down_done:
            s.down()
        print(f"\n[docker] compose stack {s.project}: {time.monotonic() - t0:.0f}s from up to down")


def test_every_container_becomes_healthy(stack: Stack):
    def all_healthy() -> bool:
        states = {svc: inspect(stack.container(svc))["State"] for svc in SERVICES}
        for svc, st in states.items():
            assert st["Status"] == "running", f"{svc} is {st['Status']}: {stack.compose('logs', '--tail', '40', svc)}"
        return all(st["Health"]["Status"] == "healthy" for st in states.values())

    t0 = time.monotonic()
    wait(all_healthy, 300, "every container healthy")
    print(f"\n[docker] every container healthy {time.monotonic() - t0:.0f}s after up")
    topics = inspect(stack.container("topics"))["State"]
    assert topics["Status"] == "exited" and topics["ExitCode"] == 0
    for svc in SERVICES:  # host networking, as a non-root user
        info = inspect(stack.container(svc))
        assert info["HostConfig"]["NetworkMode"] == "host"
        uid = run(["docker", "exec", stack.container(svc), "id", "-u"]).strip()
        assert uid != "0", f"{svc} runs as root"


def test_demo_flow_personalizes_the_same_query_per_user(stack: Stack):
    # the CLI in the running embedder container (compose v1's `run` adds links, which the host network refuses)
    one_off = ["docker", "exec", "-e", "IMGSEARCH_METRICS_PORT=0", stack.container("embedder"), "imgsearch"]
    run([*one_off, "clusters", "/images", "-k", "3"], timeout=300)
    out = run([*one_off, "ingest", "/images"], timeout=300)
    assert str(len(stack.labels)) in out, out

    def indexed() -> list[dict[str, Any]]:
        body = {"size": 100, "_source": ["image_id", "cluster_id"], "query": {"match_all": {}}}
        http(stack.url("OPENSEARCH_PORT", f"/{INDEX}/_refresh"), {})
        hits = http(stack.url("OPENSEARCH_PORT", f"/{INDEX}/_search"), body)["hits"]["hits"]
        return [h["_source"] for h in hits] if len(hits) == len(stack.labels) else []

    docs = wait(indexed, 240, "every image indexed")
    assert {d["image_id"] for d in docs} == set(stack.labels)
    by_cluster = Counter(d["cluster_id"] for d in docs)
    assert len(by_cluster) >= 2, by_cluster
    (alice_c, _), (bob_c, _) = by_cluster.most_common(2)
    members = {c: sorted(d["image_id"] for d in docs if d["cluster_id"] == c) for c in (alice_c, bob_c)}

    query = "a circle"
    url = stack.url("GATEWAY_PORT", "/api/search")

    def search(user: str) -> dict[str, Any]:
        q = urllib.parse.urlencode({"user": user, "q": query, "k": len(stack.labels), "weight": 0.9})
        return http(f"{url}?{q}", timeout=20)

    plain = wait(lambda: search("carol"), 60, "a search reply through the gateway")
    assert not plain["personalized"] and len(plain["hits"]) == len(stack.labels)

    for user, cluster in (("alice", alice_c), ("bob", bob_c)):
        for image_id in members[cluster][:4]:
            r = http(
                stack.url("GATEWAY_PORT", "/api/interactions"),
                {"user_id": user, "image_id": image_id, "event_type": "favorite"},
            )
            assert r["event_type"] == "favorite"

    def personalized(user: str, cluster: int) -> dict[str, Any] | None:
        r = search(user)
        return r if r["personalized"] and r["hits"][0]["cluster_id"] == cluster else None

    alice = wait(lambda: personalized("alice", alice_c), 90, "alice's personalized ranking")
    bob = wait(lambda: personalized("bob", bob_c), 90, "bob's personalized ranking")
    ranking = {
        name: [h["image_id"] for h in r["hits"]] for name, r in (("alice", alice), ("bob", bob), ("carol", plain))
    }
    assert ranking["alice"] != ranking["bob"]
    assert ranking["alice"] != ranking["carol"] and ranking["bob"] != ranking["carol"]
    top = {name: [h["cluster_id"] for h in r["hits"][:5]] for name, r in (("alice", alice), ("bob", bob))}
    assert top["alice"].count(alice_c) > top["bob"].count(alice_c)
    assert top["bob"].count(bob_c) > top["alice"].count(bob_c)
    # the newcomer still gets the plain order
    assert [h["image_id"] for h in search("carol")["hits"]] == ranking["carol"]


def test_down_leaves_nothing_behind(stack: Stack):
    ids = {svc: stack.container(svc) for svc in SERVICES}
    assert all(ids.values())
    stack.down()
    label = f"label=com.docker.compose.project={stack.project}"
    assert run(["docker", "ps", "-a", "-q", "--filter", label]).strip() == ""
    assert run(["docker", "network", "ls", "-q", "--filter", label]).strip() == ""
    assert run(["docker", "volume", "ls", "-q", "--filter", label]).strip() == ""
    for cid in ids.values():  # the anonymous data volumes went with their containers
        assert run(["docker", "inspect", cid], check=False) in ("", "[]\n")
