"""Issue 14 items 9-14 on the real servers: who may act as whom (JWT, API keys, demo mode), CSRF,
what /images/ serves, the workers' ports, credentials in logs, hostile inputs, inline images."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from imgsearch.config import REPO_ROOT, process_environment
from tests.support.e2e import E2E, free_port, http, start_gateway, stop_process, wait_until

pytestmark = pytest.mark.e2e
AUDIENCE = "imgsearch-gateway"


def request(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 15.0,
) -> tuple[int, dict[str, str], bytes]:
    """Like conftest.http, with raw bodies and any headers (no Content-Type unless given)."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def api_json(method: str, url: str, payload: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    status, _, body = request(
        method, url, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})}
    )
    return status, json.loads(body)


def error_code(body: bytes) -> str:
    return str(json.loads(body)["error"]["code"])


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def token(key: rsa.RSAPrivateKey, sub: str, *, exp_in: float = 300, aud: str = AUDIENCE, kid: str | None = None) -> str:
    claims = {"sub": sub, "aud": aud, "iat": int(time.time()), "exp": int(time.time() + exp_in)}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid} if kid else None)


def bearer(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


@pytest.fixture(scope="module")
def signer() -> rsa.RSAPrivateKey:
    return rsa_key()


@pytest.fixture(scope="module")
def authed(e2e: E2E, signer: rsa.RSAPrivateKey) -> Iterator[tuple[str, str]]:
    """A gateway that authenticates: JWT (RS256, a PEM public key) or an API key. (url, api key)."""
    secrets = e2e.tmp / "gateway-auth"
    secrets.mkdir(exist_ok=True)
    (secrets / "jwt.pem").write_bytes(public_pem(signer))
    api_key = base64.urlsafe_b64encode(hashlib.sha256(b"test key " + str(time.time()).encode()).digest()).decode()
    (secrets / "api-keys").write_text(
        f"# service clients\nsvc-recommender {hashlib.sha256(api_key.encode()).hexdigest()}\n"
    )
    proc, url = start_gateway(
        e2e.settings.replace(
            gateway_auth="jwt,api_key",
            gateway_jwt_key_file=str(secrets / "jwt.pem"),
            gateway_jwt_algorithms="RS256",
            gateway_jwt_audience=AUDIENCE,
            gateway_api_keys_file=str(secrets / "api-keys"),
        ),
        e2e.tmp / "logs" / "gateway-authed.log",
    )
    try:
        yield url, api_key
    finally:
        stop_process(proc)


# ---------------------------------------------------------------------- item 9: authentication
def test_gateway_without_an_auth_setting_does_not_start(e2e: E2E) -> None:
    # no authentication setting at all: the variable unset, whatever this process's environment says
    env = {**process_environment(), **e2e.settings.replace(gateway_auth="").child_env()}
    env.pop("IMGSEARCH_GATEWAY_AUTH", None)
    log = e2e.tmp / "logs" / "gateway-no-auth.log"
    port = free_port()
    proc = subprocess.run(
        [sys.executable, "-m", "apps.gateway", "--port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    log.write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "IMGSEARCH_GATEWAY_AUTH is not set" in proc.stderr


def test_requests_without_credentials_are_refused(authed: tuple[str, str]) -> None:
    url, _ = authed
    status, headers, body = request("GET", f"{url}/api/search?q=circle&user=tess")
    assert status == 401 and error_code(body) == "unauthenticated", body
    assert headers.get("WWW-Authenticate", "").startswith("Bearer")
    status, body_json = api_json(
        "POST", f"{url}/api/interactions", {"user_id": "tess", "image_id": "mono/bar-0", "event_type": "favorite"}
    )
    assert status == 401 and body_json["error"]["code"] == "unauthenticated"
    status, _, body = request("GET", f"{url}/api/config")
    config = json.loads(body)
    assert status == 200 and config["demo"] is False and config["auth"] == ["jwt", "api_key"] and config["users"] == []


def test_the_user_is_the_tokens_never_the_requests(authed: tuple[str, str], signer: rsa.RSAPrivateKey) -> None:
    url, _ = authed
    tess = bearer(token(signer, "tess"))
    status, _, body = request("GET", f"{url}/api/search?q=a+round+circle&k=3", headers=tess)
    assert status == 200, body
    assert json.loads(body)["user_id"] == "tess"
    # tess's token naming trent: refused, not answered as trent and not silently as tess
    status, _, body = request("GET", f"{url}/api/search?q=a+round+circle&user=trent", headers=tess)
    assert status == 403 and error_code(body) == "user_mismatch", body
    status, reply = api_json(
        "POST",
        f"{url}/api/interactions",
        {"user_id": "trent", "image_id": "mono/bar-0", "event_type": "favorite"},
        tess,
    )
    assert status == 403 and reply["error"]["code"] == "user_mismatch"
    status, reply = api_json("POST", f"{url}/api/interactions", {"image_id": "mono/bar-0", "event_type": "view"}, tess)
    assert status == 202 and reply["user_id"] == "tess", reply
    status, _, body = request("GET", f"{url}/api/whoami", headers=tess)
    assert status == 200 and json.loads(body) == {"user_id": "tess", "demo": False}


def test_bad_tokens_are_refused(authed: tuple[str, str], signer: rsa.RSAPrivateKey) -> None:
    url, _ = authed
    cases = {
        "expired": token(signer, "tess", exp_in=-3600),
        "other signer": token(rsa_key(), "tess"),
        "wrong audience": token(signer, "tess", aud="someone-else"),
        "unsigned": jwt.encode({"sub": "tess", "aud": AUDIENCE, "exp": int(time.time()) + 300}, None, "none"),
        "garbage": "not.a.token",
    }
    for what, tok in cases.items():
        status, headers, body = request("GET", f"{url}/api/search?q=circle", headers=bearer(tok))
        assert status == 401 and error_code(body) == "invalid_token", (what, status, body)
        assert 'error="invalid_token"' in headers.get("WWW-Authenticate", ""), what


def test_api_keys_for_service_clients(authed: tuple[str, str]) -> None:
    url, api_key = authed
    status, _, body = request("GET", f"{url}/api/whoami", headers={"X-API-Key": api_key})
    assert status == 200 and json.loads(body)["user_id"] == "svc-recommender", body
    status, _, body = request("GET", f"{url}/api/search?q=circle&k=2", headers={"X-API-Key": api_key})
    assert status == 200 and json.loads(body)["user_id"] == "svc-recommender", body
    status, _, body = request("GET", f"{url}/api/whoami", headers={"X-API-Key": api_key + "x"})
    assert status == 401 and error_code(body) == "invalid_api_key"


class _JWKS(BaseHTTPRequestHandler):
    body = b"{}"
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_tokens_verified_against_a_jwks_url(e2e: E2E) -> None:
    """An identity provider's JWKS endpoint (served here on loopback): keys found by kid."""
    key = rsa_key()
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    _JWKS.body = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _JWKS)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    log = e2e.tmp / "logs" / "gateway-jwks.log"
    jwks_url = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    proc, url = start_gateway(
        e2e.settings.replace(
            gateway_auth="jwt",
            gateway_jwt_jwks_url=jwks_url,
            gateway_jwt_algorithms="RS256",
            gateway_jwt_audience=AUDIENCE,
        ),
        log,
    )
    try:
        status, _, body = request("GET", f"{url}/api/whoami", headers=bearer(token(key, "carol", kid="k1")))
        assert status == 200 and json.loads(body)["user_id"] == "carol", body
        status, _, body = request("GET", f"{url}/api/whoami", headers=bearer(token(key, "carol", kid="k9")))
        assert status == 401 and error_code(body) == "invalid_token", body
        assert _JWKS.hits >= 1
    finally:
        stop_process(proc)
        server.shutdown()


def test_demo_mode_is_loud(e2e: E2E) -> None:
    status, _, body = http("GET", f"{e2e.gateway_url}/api/config")
    config = json.loads(body)
    assert status == 200 and config["demo"] is True and config["auth"] == ["demo"]
    assert e2e.gateway_log is not None
    assert "WARNING" in e2e.gateway_log.read_text() and "DEMO MODE" in e2e.gateway_log.read_text()


def test_demo_banner_on_the_page(e2e: E2E, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{e2e.gateway_url}/")
    wait_until(lambda: browser.execute_script("return document.body.dataset.ready === '1'"), 20, "the page")
    banner = browser.find_element(By.ID, "demo-banner")
    assert banner.is_displayed() and "DEMO MODE" in banner.text
    assert not browser.find_element(By.ID, "signin").is_displayed()  # nobody signs in in demo mode


def test_the_page_signs_in_with_a_token(
    e2e: E2E, authed: tuple[str, str], signer: rsa.RSAPrivateKey, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    url, _ = authed
    browser.get(f"{url}/?q=a+round+circle#token={token(signer, 'dora')}")
    wait_until(lambda: browser.execute_script("return document.body.dataset.ready === '1'"), 20, "the page")
    wait_until(lambda: browser.execute_script("return Number(document.body.dataset.searches || 0) > 0"), 20, "a search")
    assert not browser.find_element(By.ID, "demo-banner").is_displayed()
    assert not browser.find_element(By.ID, "signin").is_displayed()  # signed in
    assert not browser.find_element(By.ID, "user-pills").is_displayed()  # no switching to another user
    assert not browser.find_element(By.CSS_SELECTOR, "fieldset.compare").is_displayed()  # nor side by side
    assert browser.find_element(By.ID, "user").get_attribute("value") == "dora"
    assert browser.execute_script(
        "return [...document.querySelectorAll('#results .column')].map(c => c.dataset.user)"
    ) == ["dora"]
    assert "#token" not in browser.current_url  # taken out of the address bar


# ---------------------------------------------------------------------- item 10: CSRF
def test_state_changing_requests_need_json_from_our_origin(e2e: E2E) -> None:
    url = e2e.gateway_url
    body = json.dumps({"user_id": "tess", "image_id": "mono/bar-0", "event_type": "download"}).encode()
    # what a cross-site no-cors fetch or a form can send: text/plain
    status, _, reply = request("POST", f"{url}/api/interactions", body, {"Content-Type": "text/plain"})
    assert status == 415 and error_code(reply) == "unsupported_media_type", reply
    status, _, reply = request(
        "POST", f"{url}/api/interactions", body, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert status == 415
    status, _, reply = request(
        "POST", f"{url}/api/interactions", body, {"Content-Type": "application/json", "Origin": "https://evil.example"}
    )
    assert status == 403 and error_code(reply) == "origin_not_allowed", reply
    status, _, reply = request(
        "POST", f"{url}/api/interactions", body, {"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}
    )
    assert status == 403 and error_code(reply) == "origin_not_allowed", reply
    status, _, reply = request(
        "POST", f"{url}/api/search", b'{"q": "circle", "user": "tess"}', {"Content-Type": "text/plain"}
    )
    assert status == 415
    # the page itself: same origin, JSON
    status, _, reply = request(
        "POST", f"{url}/api/interactions", body, {"Content-Type": "application/json", "Origin": url}
    )
    assert status == 202, reply


# ---------------------------------------------------------------------- item 11: what /images/ serves


def _unplant(e2e: E2E, ids: list[str]) -> None:
    async def remove() -> None:
        idx = e2e.index()
        try:
            for i in ids:
                await idx.client.delete(index=idx.index, id=i, refresh=True)
        finally:
            await idx.close()

    asyncio.run(remove())


def test_images_are_served_as_what_their_bytes_are(e2e: E2E) -> None:
    png = (e2e.image_dir / "mono/bar-0.png").read_bytes()
    polyglot = e2e.image_dir / "trust" / "poly.html"
    polyglot.parent.mkdir(exist_ok=True)
    polyglot.write_bytes(png + b"<html><script>document.title='pwned'</script></html>")
    page = e2e.image_dir / "trust" / "page.png"
    page.write_bytes(b"<!doctype html><html><script>alert(1)</script></html>")
    e2e.plant({"trust-poly": polyglot.as_uri(), "trust-page": page.as_uri()})
    try:
        status, headers, body = request("GET", f"{e2e.gateway_url}/images/trust-poly")
        assert status == 200 and headers["Content-Type"] == "image/png", headers
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert (
            "sandbox" in headers["Content-Security-Policy"]
            and "default-src 'none'" in headers["Content-Security-Policy"]
        )
        status, headers, _ = request("GET", f"{e2e.gateway_url}/images/trust-poly?download=1")
        assert headers["Content-Disposition"] == 'attachment; filename="poly.png"', headers
        status, headers, body = request("GET", f"{e2e.gateway_url}/images/trust-page")
        assert status == 415 and error_code(body) == "not_an_image", body
        assert headers["Content-Type"].startswith("application/json")
    finally:
        _unplant(e2e, ["trust-poly", "trust-page"])


def test_the_page_has_a_strict_csp(e2e: E2E) -> None:
    status, headers, _ = request("GET", f"{e2e.gateway_url}/")
    csp = headers.get("Content-Security-Policy", "")
    assert status == 200 and "script-src 'self'" in csp and "default-src 'none'" in csp, headers
    assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    # a browser revalidating its cached page gets a 304 whose headers replace the cached ones: the
    # page's CSP there too (a sandbox CSP would stop the page's script on the next visit)
    status, headers, _ = request("GET", f"{e2e.gateway_url}/", headers={"If-Modified-Since": headers["Last-Modified"]})
    assert status == 304 and headers.get("Content-Security-Policy") == csp, (status, headers)


def test_the_polyglot_does_not_run_in_the_browser(e2e: E2E, browser: Any) -> None:
    png = (e2e.image_dir / "mono/bar-0.png").read_bytes()
    polyglot = e2e.image_dir / "trust" / "poly2.html"
    polyglot.parent.mkdir(exist_ok=True)
    polyglot.write_bytes(png + b"<html><script>document.title='pwned'</script></html>")
    e2e.plant({"trust-poly2": polyglot.as_uri()})
    try:
        browser.get(f"{e2e.gateway_url}/images/trust-poly2")
        time.sleep(1.0)
        assert browser.title != "pwned"
        assert browser.execute_script("return document.contentType") == "image/png"
    finally:
        _unplant(e2e, ["trust-poly2"])


# ---------------------------------------------------------------------- item 12: the workers' ports
def _other_address() -> str | None:
    """An address of this machine that is not loopback (what the network reaches)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.123", 9))  # no packet is sent: only picks the outgoing interface
            addr = str(s.getsockname()[0])
        except OSError:
            return None
    return None if addr.startswith("127.") else addr


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def test_worker_ports_are_loopback_only_and_tables_are_not_served(e2e: E2E) -> None:
    other = _other_address()
    assert other is not None, "this machine has no non-loopback address to probe"
    for role in ("embedder", "interactions", "query"):
        wait_until(lambda r=role: _reachable("127.0.0.1", e2e.web_ports[r]), 60, f"{role}'s faust web server")
        assert _reachable("127.0.0.1", e2e.metrics_ports[role]), role
        assert not _reachable(other, e2e.web_ports[role]), f"{role}: faust web reachable on {other}"
        assert not _reachable(other, e2e.metrics_ports[role]), f"{role}: metrics reachable on {other}"
    port = e2e.web_ports["query"]
    for path in ("/table/profiles/tess/", "/table/", "/router/"):
        status, _, _ = request("GET", f"http://127.0.0.1:{port}{path}")
        assert status == 404, (path, status)


# ---------------------------------------------------------------------- item 13: credentials in logs
def test_the_gateway_log_redacts_url_credentials(e2e: E2E) -> None:
    log = e2e.tmp / "logs" / "gateway-creds.log"
    secret = f"os-pass-{time.time_ns()}"
    base = e2e.settings.opensearch_url
    proc, _ = start_gateway(e2e.settings.replace(opensearch_url=base.replace("://", f"://svc:{secret}@", 1)), log)
    stop_process(proc)
    text = log.read_text()
    assert "svc:***@" in text and secret not in text, text[-2000:]


# ---------------------------------------------------------------------- item 14: input gaps
def test_hostile_numbers_and_nesting_are_clear_400s(e2e: E2E) -> None:
    url = e2e.gateway_url
    for raw in (
        b'{"q": "circle", "user": "tess", "k": Infinity}',
        b'{"q": "circle", "user": "tess", "k": 1e999}',
        b'{"q": "circle", "user": "tess", "weight": NaN}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"q": "circle", "user": "tess", "a": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    ):
        status, _, body = request("POST", f"{url}/api/search", raw, {"Content-Type": "application/json"})
        assert status == 400, (raw[:60], status, body[:300])
        err = json.loads(body)["error"]
        assert err["code"] == "malformed_json" and "Error" not in err["message"], err
    for query in ("k=Infinity", "k=1e999", "k=nan", "weight=Infinity", "weight=nan", "max_per_cluster=inf"):
        status, _, body = request("GET", f"{url}/api/search?q=circle&user=tess&{query}")
        assert status == 400 and error_code(body) == "invalid_request", (query, status, body[:300])


def test_inline_images_can_be_interacted_with_and_say_why_no_preview(e2e: E2E) -> None:
    from producers.publisher import EventPublisher
    from schemas.events import NewImage

    image_id = f"inline/trust-{time.time_ns()}"
    data = (e2e.image_dir / "mono/bar-0.png").read_bytes()

    async def publish() -> None:
        async with EventPublisher(
            e2e.settings.kafka_bootstrap, topics=e2e.settings.topics, settings=e2e.settings
        ) as pub:
            await pub.publish_images([NewImage.inline(image_id, data, metadata={"file": "bar.png"})])

    asyncio.run(publish())

    async def indexed() -> bool:
        idx = e2e.index()
        try:
            await idx.refresh()
            return await idx.get(image_id) is not None
        finally:
            await idx.close()

    wait_until(lambda: asyncio.run(indexed()), 60, "the inline image indexed")
    status, reply = api_json(
        "POST",
        f"{e2e.gateway_url}/api/interactions",
        {"user_id": "tess", "image_id": image_id, "event_type": "favorite"},
    )
    assert status == 202 and reply["image_id"] == image_id, reply
    for kind in ("thumbs", "images"):
        status, _, body = request("GET", f"{e2e.gateway_url}/{kind}/{image_id}")
        err = json.loads(body)["error"]
        assert status == 404 and err["code"] == "no_source" and "inline" in err["message"], (kind, body)
