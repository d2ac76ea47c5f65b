"""End-to-end fixtures: the real Kafka and OpenSearch, an isolated pipeline of worker processes (with
their metrics servers), the HTTP gateway as a process, and headless Debian Chromium via Selenium.

Set up once with ``bash scripts/setup_browser.sh``; run with ``.venv/bin/pytest tests/e2e``.
Everything is isolated by a unique topic prefix, app prefix (consumer groups) and index name, so it
can run beside other pipelines on the same servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from imgsearch.config import REPO_ROOT, Settings
from imgsearch.index.opensearch import ImageDoc, OpenSearchIndex
from imgsearch.kafka_admin import ensure_topics
from imgsearch.runner import Workers, ensure_engines
from schemas import topics
from tests.integration.conftest import _isolated_env, environment, synthetic_folder

CHROMIUM = os.environ.get("IMGSEARCH_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("IMGSEARCH_CHROMEDRIVER", "/usr/bin/chromedriver")
SHOTS = REPO_ROOT / "docs" / "img"
ROLES = ("embedder", "interactions", "query")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: the web page in headless Chromium against the real servers")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(method: str, url: str, body: Any = None, timeout: float = 15.0) -> tuple[int, dict[str, str], bytes]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except Exception as exc:  # the page re-rendered under a Selenium element: look again
            if type(exc).__name__ != "StaleElementReferenceException":
                raise
            last = None
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@dataclass
class E2E:
    settings: Settings
    env: dict[str, str]
    workers: Workers
    image_dir: Path
    labels: dict[str, str]
    tmp: Path
    metrics_ports: dict[str, int] = field(default_factory=dict)
    web_ports: dict[str, int] = field(default_factory=dict)  # faust's own web server
    gateway_url: str = ""
    gateway_log: Path | None = None

    def index(self) -> OpenSearchIndex:
        return OpenSearchIndex(self.settings.opensearch_url, self.settings.index_name)

    def plant(self, docs: dict[str, str | None]) -> None:
        """Index documents straight into OpenSearch (image id -> source URI), bypassing the embedder:
        images the pipeline would refuse, or a source the gateway must refuse to serve."""

        async def plant() -> None:
            idx = self.index()
            try:
                await idx.upsert(
                    [
                        ImageDoc(
                            image_id=i,
                            embedding=[0.1] * 64,
                            style=None,
                            style_model_id="x",
                            cluster_id=0,
                            model_id="hash-v1-d64",
                            centroid_version="x",
                            source_uri=uri,
                            metadata={},
                            indexed_at=datetime.now(UTC).isoformat(),
                        )
                        for i, uri in docs.items()
                    ]
                )
                await idx.refresh()
            finally:
                await idx.close()

        asyncio.run(plant())

    def clusters(self) -> dict[str, int]:
        async def read() -> dict[str, int]:
            idx = self.index()
            try:
                return {i: int((await idx.get(i) or {})["cluster_id"]) for i in self.labels}
            finally:
                await idx.close()

        return asyncio.run(read())


def start_gateway(env: dict[str, str], log_path: Path, extra: dict[str, str] | None = None) -> tuple[Any, str]:
    port = free_port()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "imgsearch.gateway", "--port", str(port)],
            cwd=REPO_ROOT,
            env={**os.environ, **env, **(extra or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the gateway exited ({proc.returncode}):\n{log_path.read_text()[-3000:]}")
        try:
            return http("GET", f"{url}/healthz", timeout=3)[0] == 200
        except OSError:
            return False

    wait_until(healthy, 60, "the gateway's /healthz")
    return proc, url


def stop_process(proc: Any) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="session")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2E]:
    engines = ensure_engines()
    tmp = tmp_path_factory.mktemp("e2e")
    image_dir = tmp / "images"
    env = {
        **_isolated_env(engines, tmp, image_dir, "hash"),
        "IMGSEARCH_GATEWAY_USERS": "alice,bob",
        "IMGSEARCH_GATEWAY_SEARCH_TIMEOUT_S": "5",
        # the page tests switch users freely: the gateway runs in its (loud) demo mode
        "IMGSEARCH_GATEWAY_AUTH": "demo",
    }
    restore = contextlib.ExitStack()
    restore.enter_context(environment(env))
    settings = Settings()
    labels = synthetic_folder(image_dir)
    workers = Workers(tmp / "logs", env)
    p = E2E(settings, env, workers, image_dir, labels, tmp)
    gateway = None
    try:

        async def prepare() -> None:
            from imgsearch.clusters import train_from_folder

            await ensure_topics(settings.kafka_bootstrap, topics.all_shared(), settings.partitions)
            await train_from_folder(settings, image_dir, k=3, vector_kind="style")

        asyncio.run(prepare())
        for role in ROLES:
            p.metrics_ports[role] = free_port()
            p.web_ports[role] = free_port()
            workers.start(
                role,
                {
                    "IMGSEARCH_METRICS_PORT": str(p.metrics_ports[role]),
                    "IMGSEARCH_WORKER_WEB_PORT": str(p.web_ports[role]),
                },
            )

        async def ingest() -> None:
            from imgsearch.cli import cmd_ingest

            n = await cmd_ingest(settings, image_dir, inline=False)
            idx = p.index()
            try:
                deadline = time.monotonic() + 120
                while True:
                    workers.check_alive()
                    try:
                        await idx.refresh()
                        if await idx.count() >= n:
                            return
                    except Exception:
                        pass
                    if time.monotonic() > deadline:
                        raise AssertionError(f"{n} images not indexed in 120s")
                    await asyncio.sleep(0.5)
            finally:
                await idx.close()

        asyncio.run(ingest())
        p.gateway_log = tmp / "logs" / "gateway.log"
        gateway, p.gateway_url = start_gateway(env, p.gateway_log)

        def answered() -> bool:
            workers.check_alive()
            status, _, _ = http("GET", f"{p.gateway_url}/api/search?q=warm+up&user=warmup&k=1", timeout=10)
            return status == 200

        wait_until(answered, 120, "a first search answered through the gateway", interval=0.2)
        yield p
    finally:
        if gateway is not None:
            stop_process(gateway)
        workers.stop_all()

        async def cleanup() -> None:
            idx = p.index()
            await idx.delete_index()
            await idx.close()

        asyncio.run(cleanup())
        restore.close()


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail(f"{CHROMIUM} / {CHROMEDRIVER} missing: run bash scripts/setup_browser.sh")
    profile = tmp_path_factory.mktemp("chromium-profile")
    downloads = tmp_path_factory.mktemp("downloads")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1440,1000",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
    ):
        opts.add_argument(flag)
    opts.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    driver.downloads_dir = downloads  # type: ignore[attr-defined]
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
