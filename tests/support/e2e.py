"""End-to-end helpers: the pipeline of the e2e fixture (``E2E``), HTTP, waiting, the gateway as a
process configured by a ``Settings``."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from consumers.runner import Workers
from imgsearch.config import REPO_ROOT, Settings, process_environment
from imgsearch.index.opensearch import ImageDoc, OpenSearchIndex

SHOTS = REPO_ROOT / "docs" / "img"
ROLES = ("embedder", "interactions", "query")


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
    settings: Settings  # the pipeline's and the gateway's (the processes get its child_env())
    workers: Workers
    image_dir: Path
    labels: dict[str, str]
    tmp: Path
    metrics_ports: dict[str, int] = field(default_factory=dict)
    web_ports: dict[str, int] = field(default_factory=dict)  # faust's own web server
    gateway_url: str = ""
    gateway_log: Path | None = None

    def index(self) -> OpenSearchIndex:
        return OpenSearchIndex(self.settings.opensearch_url, self.settings.index_name, settings=self.settings)

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


def start_gateway(settings: Settings, log_path: Path, extra_env: dict[str, str] | None = None) -> tuple[Any, str]:
    """The gateway as a process configured by ``settings`` (its ``child_env()``; ``extra_env``: other
    variables), once its /healthz answers: (process, base URL)."""
    port = free_port()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "apps.gateway", "--port", str(port)],
            cwd=REPO_ROOT,
            env={**process_environment(), **settings.child_env(), **(extra_env or {})},
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
