"""The HTTP gateway: the web page, search over Kafka, images and thumbnails, interactions, health.

One :class:`producers.SearchClient` (one reply topic) and one :class:`producers.EventPublisher` per
gateway process. Routes:

- ``GET /`` the page (``static/``); ``GET /api/config`` what the page needs to start
- ``GET|POST /api/search`` → a Kafka search request; the reply as JSON, each hit with its image and
  thumbnail URLs. No reply in time: 504; the worker's error reply: 4xx/5xx by error code
- ``POST /api/interactions`` ``{"user_id", "image_id", "event_type"}`` → an Interaction event (202)
- ``POST /api/forget`` ``{"user_id"}`` → a ForgetUser request (202): profile, parked events, Personalize data
- ``GET /images/{image_id}`` the original (``?download=1``: as an attachment), ``GET /thumbs/{image_id}``
  a PNG thumbnail; only ``file://`` sources under ``IMGSEARCH_ALLOWED_URI_ROOTS`` are ever read
- ``GET /healthz`` (JSON; 503 when Kafka or OpenSearch is not usable), ``GET /metrics`` (Prometheus)
- ``GET /api/whoami`` the authenticated user

Search and interactions act as the authenticated user (``auth.py``: JWT or API key; ``demo``: the
request's own ``user``). Every state-changing request must be JSON from the gateway's own origin
(``auth.csrf_guard``). Originals are served only as the image type their bytes are (``sniff_image``),
every response carries ``nosniff`` and a Content-Security-Policy.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import math
import sys
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlparse

from aiohttp import web
from PIL import Image
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from apps.gateway.auth import AUTH, DEMO_WARNING, Authenticator, AuthError, authenticated_user, make_csrf_guard
from imgsearch import metrics
from imgsearch.config import Settings, redact_url
from imgsearch.images import ImageRejected, decode, fetch_uri, parse_roots
from imgsearch.index.opensearch import OpenSearchIndex
from producers import EventPublisher, EventTooLarge, KafkaClientError, SearchClient, SearchTimeout
from producers.search_client import SearchError, default_client_id
from schemas.events import MAX_FILTERS, MAX_K, EventType, ForgetUser, Interaction, SearchResponse
from schemas.limits import GATEWAY_MAX_BODY_BYTES
from schemas.reasons import Reason

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
DEFAULT_PORT = 8080
# the only thumbnail sizes (issue 14 item 7): a requested size is rounded up to one of them, so an
# image has at most four cached thumbnails whatever sizes are asked for
THUMB_SIZES = (64, 128, 256, 512)
THUMB_CACHE = 1024
# originals are served as one of these, by what their bytes are (Pillow's sniffing), never by file name
SERVED_TYPES = {
    "PNG": ("image/png", ".png"),
    "JPEG": ("image/jpeg", ".jpg"),
    "GIF": ("image/gif", ".gif"),
    "WEBP": ("image/webp", ".webp"),
}
# the page: scripts, styles, images and fetches from the gateway only; no inline script, no framing
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# everything else (JSON, images): nothing may run, even if a browser renders it as a document
RESOURCE_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"


def json_error(status: int, code: str, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, **extra}}, status=status)


class GatewayError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def sniff_image(data: bytes) -> tuple[str, str] | None:
    """(content type, file suffix) of the bytes if they are one of ``SERVED_TYPES``, by their
    signature (Pillow identifies the format without decoding); else ``None``."""
    try:
        with Image.open(io.BytesIO(data), formats=list(SERVED_TYPES)) as img:
            return SERVED_TYPES.get(img.format or "")
    except Exception:
        return None


class Gateway:
    """What one gateway process holds: the Kafka clients, the index reader, a thumbnail cache."""

    def __init__(
        self,
        settings: Settings,
        *,
        search_timeout_s: float | None = None,
        users: list[str] | None = None,
    ) -> None:
        self.settings = settings
        self.search_timeout_s = search_timeout_s or settings.gateway_search_timeout_s
        self.users = users or [u.strip() for u in settings.gateway_users.split(",") if u.strip()]
        self.roots = parse_roots(settings.allowed_uri_roots)
        self.client_id = default_client_id("gateway-", settings.kafka_sasl_username)
        # the Kafka and OpenSearch clients need the running loop: made in start()
        self._client: SearchClient | None = None
        self._publisher: EventPublisher | None = None
        self._index: OpenSearchIndex | None = None
        self._thumbs: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._started = False

    @property
    def client(self) -> SearchClient:
        if self._client is None:
            raise RuntimeError("Gateway.start() first")
        return self._client

    @property
    def publisher(self) -> EventPublisher:
        if self._publisher is None:
            raise RuntimeError("Gateway.start() first")
        return self._publisher

    @property
    def index(self) -> OpenSearchIndex:
        if self._index is None:
            raise RuntimeError("Gateway.start() first")
        return self._index

    async def start(self) -> None:
        s = self.settings
        self._client = SearchClient(s.kafka_bootstrap, client_id=self.client_id, topics=s.topics, settings=s)
        self._publisher = EventPublisher(s.kafka_bootstrap, client_id="imgsearch-gateway", topics=s.topics, settings=s)
        self._index = OpenSearchIndex(s.opensearch_url, s.index_name, timeout_s=5.0, settings=s)  # the serving alias
        await self.client.start()
        await self.publisher.start()
        self._started = True
        log.info(
            "gateway: Kafka %s (replies on %s), OpenSearch %s index %s, image roots %s",
            redact_url(self.settings.kafka_bootstrap),
            self.client.reply_topic,
            redact_url(self.settings.opensearch_url),
            self.settings.index_name,
            self.roots or "(none: images are not served)",
        )

    async def stop(self) -> None:
        self._started = False
        steps: list[Callable[[], Awaitable[None]]] = []
        if self._client is not None:
            steps.append(self._client.stop)
        if self._publisher is not None:
            steps.append(self._publisher.stop)
        if self._index is not None:
            steps.append(self._index.close)
        for step in steps:
            try:
                await step()
            except Exception as exc:  # shutting down: report, go on with the rest
                log.warning("gateway shutdown: %s", exc)

    # ------------------------------------------------------------------ images
    async def indexed(self, image_id: str) -> dict[str, Any]:
        try:
            doc = await asyncio.wait_for(self.index.get(image_id), 5.0)
        except TimeoutError:
            raise GatewayError(503, "index_unavailable", "the image index did not answer in time") from None
        except Exception as exc:
            raise GatewayError(503, "index_unavailable", f"the image index did not answer: {exc}") from exc
        if doc is None:
            raise GatewayError(404, "unknown_image", f"no indexed image {image_id!r}")
        return dict(doc)

    async def source_of(self, image_id: str) -> str:
        uri = (await self.indexed(image_id)).get("source_uri")
        if not uri:
            raise GatewayError(
                404,
                "no_source",
                f"image {image_id!r} was ingested inline (no source URI): the gateway keeps no copy of its "
                "bytes, so it has no preview or download; it can still be searched and interacted with",
            )
        return str(uri)

    def _read(self, uri: str) -> bytes:
        if not self.roots:
            raise GatewayError(403, "uri_not_allowed", "no IMGSEARCH_ALLOWED_URI_ROOTS: the gateway serves no files")
        try:
            return fetch_uri(uri, self.roots, self.settings.max_image_bytes, timeout_s=self.settings.read_timeout_s)
        except ImageRejected as exc:
            raise GatewayError(exc.code.status, exc.code, str(exc)) from exc

    async def original(self, image_id: str) -> tuple[bytes, str, str]:
        """(bytes, content type, file name) of an image to serve. Its type is what its bytes are
        (``sniff_image``), never its name: other decodable formats are served re-encoded as PNG,
        anything else is refused (415), so nothing but an image is served from the gateway's origin."""
        uri = await self.source_of(image_id)
        data = await asyncio.to_thread(self._read, uri)
        name = Path(unquote(urlparse(uri).path)).name
        sniffed = sniff_image(data)
        if sniffed is None:

            def as_png() -> bytes:
                try:
                    img = decode(data, self.settings.max_image_bytes, self.settings.max_image_pixels)
                except ImageRejected as exc:
                    raise GatewayError(415, "not_an_image", f"{image_id!r} is not an image the gateway serves") from exc
                buf = io.BytesIO()
                img.save(buf, "PNG")
                return buf.getvalue()

            data = await asyncio.to_thread(as_png)
            sniffed = SERVED_TYPES["PNG"]
        ctype, suffix = sniffed
        return data, ctype, str(Path(name).with_suffix(suffix)) if name else f"image{suffix}"

    async def thumbnail(self, image_id: str, size: int) -> bytes:
        key = (image_id, size)
        cached = self._thumbs.get(key)
        if cached is not None:
            self._thumbs.move_to_end(key)
            return cached
        uri = await self.source_of(image_id)

        def make() -> bytes:
            data = self._read(uri)
            try:
                # reduced while decoding (JPEG draft) and to the thumbnail's size, never held full size
                img = decode(data, self.settings.max_image_bytes, self.settings.max_image_pixels, max_side=size)
            except ImageRejected as exc:
                raise GatewayError(422, exc.code, str(exc)) from exc
            buf = io.BytesIO()
            img.save(buf, "PNG", optimize=True)
            return buf.getvalue()

        out = await asyncio.to_thread(make)
        self._thumbs[key] = out
        while len(self._thumbs) > THUMB_CACHE:
            self._thumbs.popitem(last=False)
        return out

    # ------------------------------------------------------------------ search
    async def search(self, params: dict[str, Any]) -> dict[str, Any]:
        user = str(params.get("user_id") or params.get("user") or "").strip()
        text = params.get("text") if params.get("text") is not None else params.get("q")
        text = str(text).strip() if text is not None else ""
        image_b64 = params.get("image_b64") or None
        # "more like this" (issue 15): the query is that indexed image's stored vector, nothing is uploaded
        similar = params.get("similar_to") or params.get("like_image_id") or None
        if not user:
            raise GatewayError(400, "invalid_request", "a user id is needed (user)")
        if not text and not image_b64 and not similar:
            raise GatewayError(400, "invalid_request", "a search needs text (q), an image or similar_to")
        try:
            k = int(params.get("k") or 20)
            weight_raw = params.get("personalization_weight", params.get("weight"))
            weight = None if weight_raw in (None, "") else float(weight_raw)
            cap_raw = params.get("max_per_cluster")
            cap = None if cap_raw in (None, "", 0, "0") else int(cap_raw)
            lam_raw = params.get("mmr_lambda")  # issue 15: MMR diversity, 1 = relevance only
            lam = None if lam_raw in (None, "") else float(lam_raw)
            page = int(params.get("page") or 1)
        except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: int(inf)
            raise GatewayError(400, "invalid_request", f"bad number: {exc}") from exc
        filters = self._filters(params.get("filters"), params.get("filter"))
        if weight is not None and not math.isfinite(weight):
            raise GatewayError(400, "invalid_request", f"bad number: personalization weight {weight_raw!r}")
        if lam is not None and not math.isfinite(lam):
            raise GatewayError(400, "invalid_request", f"bad number: mmr_lambda {lam_raw!r}")
        t0 = time.perf_counter()
        try:
            resp = await self.client.search(
                user,
                text or None,
                image_b64=image_b64,
                k=min(max(k, 1), MAX_K),
                personalization_weight=weight,
                max_per_cluster=cap,
                mmr_lambda=lam,
                timeout_s=self.search_timeout_s,
                similar_to=str(similar) if similar else None,
                filters=filters,
                page=page,
                ranking_id=str(params["ranking_id"]) if params.get("ranking_id") else None,
                search_after=str(params["search_after"]) if params.get("search_after") else None,
            )
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'request'}: {e['msg']}" for e in exc.errors())
            if any(e["type"] == "image_too_large" for e in exc.errors()):  # schemas/limits.py
                raise GatewayError(413, "image_too_large", problems) from exc
            raise GatewayError(400, "invalid_request", problems) from exc
        except SearchTimeout as exc:
            raise GatewayError(504, "search_timeout", str(exc)) from exc
        except SearchError as exc:
            # the worker's error code's status (schemas/reasons.py); 502 for a code this version does not know
            raise GatewayError(Reason.status_of(exc.code, 502), exc.code, str(exc)) from exc
        except EventTooLarge as exc:
            raise GatewayError(413, "request_too_large", str(exc)) from exc
        except KafkaClientError as exc:  # e.g. the request topic does not exist
            raise GatewayError(503, "search_unavailable", str(exc)) from exc
        return self.render(resp, (time.perf_counter() - t0) * 1000)

    @staticmethod
    def _filters(body: Any, query: Any) -> list[Any]:
        """Metadata filters: ``filters`` (a JSON list of MetadataFilter objects or ``key=value`` strings)
        and/or repeated ``filter=key=value`` query parameters; checked by the SearchRequest schema."""
        from streams.retrieval import parse_filter

        given: list[Any] = []
        for part in (body, query):
            if part is None or part == "":
                continue
            given += part if isinstance(part, list) else [part]
        if len(given) > MAX_FILTERS:
            raise GatewayError(400, "invalid_request", f"at most {MAX_FILTERS} filters")
        out: list[Any] = []
        for f in given:
            if isinstance(f, str):
                try:
                    out.append(parse_filter(f))
                except ValueError as exc:
                    raise GatewayError(400, "invalid_request", f"filter {f[:80]!r}: {exc}") from exc
            elif isinstance(f, dict):
                out.append(f)
            else:
                raise GatewayError(400, "invalid_request", "a filter is an object or a key=value string")
        return out

    @staticmethod
    def render(resp: SearchResponse, took_ms: float) -> dict[str, Any]:
        out = resp.model_dump(mode="json")
        for hit in out["hits"]:
            ref = quote(hit["image_id"], safe="/")
            hit["image_url"] = f"/images/{ref}"
            hit["thumb_url"] = f"/thumbs/{ref}"
        out["gateway_ms"] = round(took_ms, 1)
        return out

    # ------------------------------------------------------------------ interactions
    async def interact(self, body: dict[str, Any]) -> Interaction:
        try:
            event = Interaction.model_validate(
                {
                    "user_id": body.get("user_id"),
                    "image_id": body.get("image_id"),
                    "event_type": body.get("event_type"),
                    "session_id": body.get("session_id") or None,
                }
            )
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise GatewayError(400, "invalid_interaction", problems) from exc
        await self.indexed(event.image_id)  # unknown images are refused here (inline-ingested ones are known)
        try:
            await self.publisher.publish_interaction(event)
        except KafkaClientError as exc:  # a deadline or a missing topic: said, not a 500
            raise GatewayError(503, "interactions_unavailable", str(exc)) from exc
        metrics.INTERACTIONS_PUBLISHED.labels(event.event_type.value).inc()
        return event

    # ------------------------------------------------------------------ forget (issue 14 item 15)
    async def forget(self, body: dict[str, Any]) -> ForgetUser:
        # the route puts the authenticated user's id in the body (gateway.auth), so a user can only
        # ask to forget themself
        try:
            request = ForgetUser.model_validate({"user_id": body.get("user_id"), "requested_by": "gateway"})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise GatewayError(400, "invalid_request", problems) from exc
        await self.publisher.publish_forget(request)
        return request

    # ------------------------------------------------------------------ health
    async def health(self) -> tuple[bool, dict[str, Any]]:
        checks: dict[str, Any] = {"kafka": self._started}
        try:
            checks["opensearch"] = bool(await asyncio.wait_for(self.index.client.ping(), 2.0))
        except Exception:
            checks["opensearch"] = False
        return all(checks.values()), checks


GATEWAY = web.AppKey("gateway", Gateway)


def _route_name(request: web.Request) -> str:
    info = request.match_info
    resource = info.route.resource if info.route is not None else None
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def errors_and_metrics(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    t0 = time.perf_counter()
    route = _route_name(request)
    try:
        resp = await handler(request)
    except GatewayError as exc:
        resp = json_error(exc.status, exc.code, exc.message)
    except AuthError as exc:
        resp = json_error(exc.status, exc.code, exc.message)
        resp.headers.update(exc.headers)
    except web.HTTPException as exc:
        if not request.path.startswith("/api/"):
            metrics.HTTP_REQUESTS.labels(route, request.method, str(exc.status)).inc()
            raise
        resp = json_error(exc.status, exc.reason.lower().replace(" ", "_"), exc.text or exc.reason)
    except Exception:  # the details go to the log, not to the client
        ref = uuid.uuid4().hex[:12]
        log.exception("gateway error on %s (ref %s)", request.path, ref)
        resp = json_error(500, "internal", f"internal error (ref {ref} in the gateway log)")
    metrics.HTTP_REQUESTS.labels(route, request.method, str(resp.status)).inc()
    metrics.HTTP_SECONDS.labels(route).observe(time.perf_counter() - t0)
    return resp


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every response (pages, JSON, images, static files, errors): no MIME sniffing, a CSP."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    # by path, not by the response's type: a 304 revalidating the page has no type, and its headers
    # replace the cached ones (a sandbox CSP there would stop the page's script)
    response.headers["Content-Security-Policy"] = PAGE_CSP if request.path == "/" else RESOURCE_CSP


async def index_page(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


async def config(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    auth = request.app[AUTH]
    return web.json_response(
        {
            "demo": auth.demo,
            "auth": list(auth.modes),
            "users": gw.users if auth.demo else [],
            "default_weight": gw.settings.personalization_weight,
            "default_mmr_lambda": gw.settings.mmr_lambda,
            "k": 20,
            "max_k": MAX_K,
            "event_types": [e.value for e in EventType],
            "search_timeout_s": gw.search_timeout_s,
        }
    )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


async def _json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object: strict JSON (no NaN/Infinity, finite numbers), any nesting
    depth refused with a 400 instead of the parser's RecursionError."""
    try:
        body = json.loads(await request.text(), parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise GatewayError(400, "malformed_json", "the body is not usable JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, and the two above
        raise GatewayError(400, "malformed_json", f"the body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise GatewayError(400, "malformed_json", "the body must be a JSON object")
    return body


async def whoami(request: web.Request) -> web.Response:
    user = await authenticated_user(request, request.query.get("user"))
    return web.json_response({"user_id": user, "demo": request.app[AUTH].demo})


async def search(request: web.Request) -> web.Response:
    params: dict[str, Any] = dict(request.query)
    if "filter" in request.query:  # repeatable: filter=license=cc0&filter=year>=2020
        params["filter"] = request.query.getall("filter")
    if request.method == "POST":
        params.update(await _json_object(request))
    params["user_id"] = await authenticated_user(request, params.get("user_id") or params.get("user"))
    return web.json_response(await request.app[GATEWAY].search(params))


async def interactions(request: web.Request) -> web.Response:
    body = await _json_object(request)
    body["user_id"] = await authenticated_user(request, body.get("user_id"))
    event = await request.app[GATEWAY].interact(body)
    return web.json_response(
        {
            "event_id": event.event_id,
            "user_id": event.user_id,
            "image_id": event.image_id,
            "event_type": event.event_type.value,
        },
        status=202,
    )


async def forget(request: web.Request) -> web.Response:
    body = await _json_object(request)
    body["user_id"] = await authenticated_user(request, body.get("user_id"))  # a user forgets only themself
    req = await request.app[GATEWAY].forget(body)
    return web.json_response({"event_id": req.event_id, "user_id": req.user_id, "status": "accepted"}, status=202)


async def image(request: web.Request) -> web.Response:
    data, ctype, name = await request.app[GATEWAY].original(request.match_info["image_id"])
    headers = {"Cache-Control": "public, max-age=300"}
    if request.query.get("download") not in (None, "", "0"):
        safe = "".join(c for c in name if c.isalnum() or c in "._-") or "image"
        headers["Content-Disposition"] = f'attachment; filename="{safe}"'
    return web.Response(body=data, content_type=ctype, headers=headers)


def thumb_size(requested: int) -> int:
    """The smallest fixed thumbnail size at least ``requested`` (the largest beyond it)."""
    return next((s for s in THUMB_SIZES if s >= requested), THUMB_SIZES[-1])


async def thumb(request: web.Request) -> web.Response:
    try:
        size = int(request.query.get("size", "256"))
    except ValueError:
        raise GatewayError(400, "invalid_request", "size must be an integer") from None
    size = thumb_size(size)
    data = await request.app[GATEWAY].thumbnail(request.match_info["image_id"], size)
    return web.Response(body=data, content_type="image/png", headers={"Cache-Control": "public, max-age=300"})


async def healthz(request: web.Request) -> web.Response:
    ok, checks = await request.app[GATEWAY].health()
    return web.json_response({"status": "ok" if ok else "unhealthy", **checks}, status=200 if ok else 503)


async def metrics_page(request: web.Request) -> web.Response:
    resp = web.Response(body=generate_latest())
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp


def create_app(settings: Settings | None = None, gateway: Gateway | None = None) -> web.Application:
    gw = gateway or Gateway(settings or Settings())
    auth = Authenticator(gw.settings)  # refuses to start without a configured IMGSEARCH_GATEWAY_AUTH
    app = web.Application(
        middlewares=[errors_and_metrics, make_csrf_guard(gw.settings)], client_max_size=GATEWAY_MAX_BODY_BYTES
    )
    app[GATEWAY] = gw
    app[AUTH] = auth
    app.on_response_prepare.append(security_headers)
    if auth.demo:
        log.warning(DEMO_WARNING)
    else:
        log.info("gateway authentication: %s", auth.describe())

    async def lifecycle(app: web.Application) -> Any:
        await gw.start()
        yield
        await gw.stop()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/", index_page)
    app.router.add_static("/static/", STATIC_DIR, append_version=False)
    app.router.add_get("/api/config", config)
    app.router.add_get("/api/whoami", whoami)
    app.router.add_route("GET", "/api/search", search)
    app.router.add_route("POST", "/api/search", search)
    app.router.add_post("/api/interactions", interactions)
    app.router.add_post("/api/forget", forget)
    app.router.add_get("/images/{image_id:.+}", image)
    app.router.add_get("/thumbs/{image_id:.+}", thumb)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_page)
    return app


def main(argv: list[str] | None = None) -> int:
    try:
        settings = Settings()
    except ValueError as exc:  # a bad setting: say so, do not serve
        print(f"gateway not started: {exc}", file=sys.stderr)
        return 2
    ap = argparse.ArgumentParser(prog="python -m apps.gateway", description=__doc__.split("\n", 1)[0])
    ap.add_argument("--host", default=settings.gateway_host)
    ap.add_argument("--port", type=int, default=settings.gateway_port)
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s gateway %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    try:
        app = create_app(settings)
    except ValueError as exc:  # no or a bad authentication set-up: say so, do not serve
        log.error("gateway not started: %s", exc)
        return 2
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        print=lambda _: log.info("gateway on http://%s:%d/", args.host, args.port),
    )
    return 0
