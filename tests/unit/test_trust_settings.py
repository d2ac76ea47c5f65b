"""Issue 14 items 12-14 where no server is involved: credentials redacted in every URL we print or
log, loopback defaults of the workers' ports, faust's table views off, no exception details in a 500,
the gateway's authentication set-up refused when missing or unsafe."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from imgsearch.config import REPO_ROOT, Settings

SECRET = "s3cr3t-Pa55"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"https://admin:{SECRET}@search.example:9200", "https://admin:***@search.example:9200"),
        (f"https://admin:{SECRET}@search.example:9200/prefix?x=1", "https://admin:***@search.example:9200/prefix?x=1"),
        (f"http://token-{SECRET}@h:1/", "http://***@h:1/"),
        (f"u:{SECRET}@b1:9092,u:{SECRET}@b2:9092", "u:***@b1:9092,u:***@b2:9092"),
        (f"kafka://u:{SECRET}@b1:9092", "kafka://u:***@b1:9092"),
        ("http://127.0.0.1:9200", "http://127.0.0.1:9200"),
        ("127.0.0.1:9092,127.0.0.2:9092", "127.0.0.1:9092,127.0.0.2:9092"),
        (f"https://a:b:{SECRET}@x@host/", "https://a:***@host/"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    from imgsearch.config import redact_url

    assert redact_url(url) == expected
    assert SECRET not in redact_url(url)


def test_settings_redacted_hides_url_credentials() -> None:
    s = Settings(opensearch_url=f"https://admin:{SECRET}@search.example:9200", kafka_bootstrap=f"svc:{SECRET}@b1:9092")
    out = json.dumps(s.redacted(), default=str)
    assert SECRET not in out
    assert "https://admin:***@search.example:9200" in out


def test_imgsearch_settings_prints_no_url_credentials() -> None:
    env = {"OPENSEARCH_URL": f"https://admin:{SECRET}@search.example:9200", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "apps", "settings"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert SECRET not in proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["opensearch_url"] == "https://admin:***@search.example:9200"


def test_worker_start_log_redacts_url_credentials(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from consumers import _run

    monkeypatch.setenv("OPENSEARCH_URL", f"https://admin:{SECRET}@search.example:9200")

    class Stop(Exception):
        pass

    def build(settings: Settings) -> None:
        raise Stop

    with caplog.at_level(logging.INFO, logger="imgsearch"), pytest.raises(Stop):
        _run.run("query", build)  # type: ignore[arg-type]
    assert "starting query worker" in caplog.text
    assert SECRET not in caplog.text and "admin:***@search.example" in caplog.text


# ---------------------------------------------------------------------- item 12
def test_faust_web_binds_loopback_without_table_views(tmp_path: Path) -> None:
    from streams.common import make_app

    app = make_app("query", Settings(web_port=29460, data_dir=str(tmp_path)))
    assert app.conf.web_bind == "127.0.0.1"
    assert app.conf.web_tables_enabled is False
    served = [str(bp) for _, bp in app.web.blueprints._enabled]
    assert not any("tables" in bp for bp in served), served
    app2 = make_app("query", Settings(web_port=29461, web_host="0.0.0.0", data_dir=str(tmp_path)))
    assert app2.conf.web_bind == "0.0.0.0"  # a deployment can open it, explicitly


def test_metrics_server_binds_loopback_by_default() -> None:
    from prometheus_client import CollectorRegistry

    from imgsearch.metrics import start_metrics_server

    assert Settings.from_env({}).metrics_host == "127.0.0.1"
    server = start_metrics_server(0, registry=CollectorRegistry())
    try:
        assert server.httpd.server_address[0] == "127.0.0.1"
    finally:
        server.stop()


# ---------------------------------------------------------------------- item 14: a 500 says nothing
async def test_an_unexpected_error_is_a_500_without_details() -> None:
    from apps.gateway.app import errors_and_metrics

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError(f"connection to https://admin:{SECRET}@db failed")

    app = web.Application(middlewares=[errors_and_metrics])
    app.router.add_get("/api/boom", boom)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/api/boom")
        body = await resp.json()
    assert resp.status == 500 and body["error"]["code"] == "internal"
    assert "RuntimeError" not in body["error"]["message"] and SECRET not in json.dumps(body)
    assert "ref " in body["error"]["message"]


# ---------------------------------------------------------------------- item 9: set-up errors
def test_authenticator_refuses_missing_or_unsafe_setups(tmp_path: Path) -> None:
    from apps.gateway.auth import Authenticator

    with pytest.raises(ValueError, match="IMGSEARCH_GATEWAY_AUTH is not set"):
        Authenticator(Settings(gateway_auth=""))
    with pytest.raises(ValueError, match="unknown mode"):
        Authenticator(Settings(gateway_auth="basic"))
    with pytest.raises(ValueError, match="cannot be combined"):
        Authenticator(Settings(gateway_auth="demo,jwt"))
    with pytest.raises(ValueError, match="needs IMGSEARCH_GATEWAY_JWT_JWKS_URL"):
        Authenticator(Settings(gateway_auth="jwt"))
    with pytest.raises(ValueError, match="not 'none'"):
        Authenticator(Settings(gateway_auth="jwt", gateway_jwt_key_file="x", gateway_jwt_algorithms="none"))
    secret = tmp_path / "secret"
    secret.write_text("short")
    with pytest.raises(ValueError, match="HS"):  # an HMAC secret with the default RS256/ES256
        Authenticator(Settings(gateway_auth="jwt", gateway_jwt_key_file=str(secret)))
    with pytest.raises(ValueError, match="at least 32 bytes"):
        Authenticator(Settings(gateway_auth="jwt", gateway_jwt_key_file=str(secret), gateway_jwt_algorithms="HS256"))
    keys = tmp_path / "keys"
    keys.write_text("svc not-a-hash\n")
    with pytest.raises(ValueError, match="sha256"):
        Authenticator(Settings(gateway_auth="api_key", gateway_api_keys_file=str(keys)))
    assert Authenticator(Settings(gateway_auth="demo")).demo
