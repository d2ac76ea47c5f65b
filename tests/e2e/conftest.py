"""End-to-end fixtures: the real Kafka and OpenSearch, an isolated pipeline of worker processes (with
their metrics servers), the HTTP gateway as a process, and headless Debian Chromium via Selenium.

Set up once with ``bash scripts/setup_browser.sh``; run with ``.venv/bin/pytest tests/e2e``.
Everything is isolated by a unique topic prefix, app prefix (consumer groups) and index name, so it
can run beside other pipelines on the same servers.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from consumers.runner import Workers
from imgsearch.config import process_environment
from imgsearch.kafka.admin import ensure_topics
from tests.support import isolated_settings, synthetic_folder
from tests.support.e2e import E2E, ROLES, free_port, http, start_gateway, stop_process, wait_until

# where scripts/setup_browser.sh put them (a test knob, not a setting of the product)
CHROMIUM = process_environment().get("IMGSEARCH_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = process_environment().get("IMGSEARCH_CHROMEDRIVER", "/usr/bin/chromedriver")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: the web page in headless Chromium against the real servers")


@pytest.fixture(scope="session")
def e2e(engines: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2E]:
    tmp = tmp_path_factory.mktemp("e2e")
    image_dir = tmp / "images"
    settings = isolated_settings(
        engines,
        tmp,
        image_dir,
        gateway_users="alice,bob",
        gateway_search_timeout_s=5.0,
        # the page tests switch users freely: the gateway runs in its (loud) demo mode
        gateway_auth="demo",
    )
    labels = synthetic_folder(image_dir)
    workers = Workers(tmp / "logs", {**engines, **settings.child_env()})
    p = E2E(settings, workers, image_dir, labels, tmp)
    gateway = None
    try:

        async def prepare() -> None:
            from jobs.clusters import train_from_folder

            await ensure_topics(
                settings.kafka_bootstrap, settings.topics.all_shared(), settings.partitions, settings=settings
            )
            await train_from_folder(settings, image_dir, k=3, vector_kind="style")

        asyncio.run(prepare())
        for role in ROLES:
            p.metrics_ports[role] = free_port()
            p.web_ports[role] = free_port()
            own = settings.replace(metrics_port=p.metrics_ports[role], web_port=p.web_ports[role])
            workers.start(role, own.child_env())

        async def ingest() -> None:
            from jobs.ingest import cmd_ingest

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
        gateway, p.gateway_url = start_gateway(settings, p.gateway_log)

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
