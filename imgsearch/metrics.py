"""Prometheus metrics for the workers and the gateway, and the small HTTP server that serves them.

Every worker process serves ``/metrics`` (Prometheus text format) and ``/healthz`` (JSON, 200 while
healthy, 503 otherwise) on ``IMGSEARCH_METRICS_PORT`` (0 or unset: off). The server is
prometheus_client's own threaded WSGI server, so it keeps answering even when the event loop is busy.
When the port is taken (several workers on one host), the next free port up to
``IMGSEARCH_METRICS_PORT_TRIES`` (default 20) above it is used and logged.

A faust app is wired with one call, :func:`instrument_faust_app` (idempotent), which adds

- a faust sensor: messages received / processed per topic, processing time per topic, send
  errors, rebalances;
- a timer that sets the consumer lag of every assigned partition (high-water mark minus the
  position faust has committed);
- the metrics/health server, started with the app.

The stages are reported by explicit one-line calls in the agents: :func:`dead_letter`,
:func:`observe_stage` / :func:`timed` (embedding), :func:`observe_search` (k-NN, rank, errors).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

EVENTS_RECEIVED = Counter(
    "imgsearch_events_received_total", "Messages a worker's consumer received, per topic", ["role", "topic"]
)
EVENTS_PROCESSED = Counter(
    "imgsearch_events_processed_total", "Events an agent finished processing, per topic", ["role", "topic"]
)
EVENT_SECONDS = Histogram(
    "imgsearch_event_processing_seconds",
    "Time from an event entering an agent's stream to its acknowledgement, per topic",
    ["role", "topic"],
    buckets=LATENCY_BUCKETS,
)
ERRORS = Counter(
    "imgsearch_errors_total",
    "Errors by kind (send, search error reply codes, ranker fallback, ...)",
    ["role", "kind"],
)
DEAD_LETTERS = Counter(
    "imgsearch_dead_letters_total",
    "Events sent to the dead-letter topic, by source topic and reason code",
    ["role", "source_topic", "reason_code"],
)
STAGE_SECONDS = Histogram(
    "imgsearch_stage_seconds",
    "Latency of a pipeline stage: embed_images, embed_query, knn, rank, search (whole answer)",
    ["role", "stage"],
    buckets=LATENCY_BUCKETS,
)
CONSUMER_LAG = Gauge(
    "imgsearch_consumer_lag",
    "Messages not yet committed by this worker, per assigned partition (high-water mark - committed)",
    ["role", "topic", "partition"],
)
REBALANCES = Counter("imgsearch_rebalances_total", "Consumer group rebalances this worker went through", ["role"])
SEARCHES = Counter("imgsearch_searches_total", "Search answers sent, by outcome", ["role", "outcome"])

# the gateway
HTTP_REQUESTS = Counter(
    "imgsearch_gateway_requests_total", "HTTP requests to the gateway", ["route", "method", "status"]
)
HTTP_SECONDS = Histogram(
    "imgsearch_gateway_request_seconds", "HTTP request latency at the gateway", ["route"], buckets=LATENCY_BUCKETS
)
INTERACTIONS_PUBLISHED = Counter(
    "imgsearch_gateway_interactions_total", "Interactions the gateway published", ["event_type"]
)

_QUERY_STAGES = {"embed": "embed_query", "knn": "knn", "rank": "rank"}


# ------------------------------------------------------------------------------------------ calls
def dead_letter(role: str, source_topic: str, reason_code: str) -> None:
    DEAD_LETTERS.labels(role, source_topic, reason_code).inc()


def error(role: str, kind: str) -> None:
    ERRORS.labels(role, kind).inc()


def observe_stage(role: str, stage: str, seconds: float) -> None:
    STAGE_SECONDS.labels(role, stage).observe(seconds)


@contextlib.contextmanager
def timed(role: str, stage: str) -> Iterator[None]:
    """``with metrics.timed(ROLE, "embed_images"): ...``"""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        observe_stage(role, stage, time.perf_counter() - t0)


def observe_search(role: str, response: Any) -> None:
    """One search answer (a ``SearchResponse``): stage latencies from its ``timings_ms``, outcome,
    error code, and whether personalization fell back to relevance only."""
    timings: Mapping[str, float] = getattr(response, "timings_ms", {}) or {}
    for key, ms in timings.items():
        observe_stage(role, _QUERY_STAGES.get(key, key), ms / 1000.0)
    if timings:
        observe_stage(role, "search", sum(timings.values()) / 1000.0)
    err = getattr(response, "error", None)
    if err is not None:
        SEARCHES.labels(role, "error").inc()
        error(role, f"search_{err.code}")
    else:
        SEARCHES.labels(role, "personalized" if getattr(response, "personalized", False) else "relevance_only").inc()
        if any("personalization unavailable" in n for n in getattr(response, "notes", [])):
            error(role, "ranker_fallback")


def set_consumer_lag(role: str, lags: Iterable[tuple[str, int, int]]) -> None:
    """Replace this role's lag series with ``(topic, partition, lag)`` (revoked partitions disappear)."""
    fresh = {(topic, str(partition)): lag for topic, partition, lag in lags}
    for labels in list(_lag_labels.get(role, set())):
        if labels not in fresh:
            with contextlib.suppress(KeyError):
                CONSUMER_LAG.remove(role, *labels)
    for (topic, partition), lag in fresh.items():
        CONSUMER_LAG.labels(role, topic, partition).set(max(0, lag))
    _lag_labels[role] = set(fresh)


_lag_labels: dict[str, set[tuple[str, str]]] = {}


# ------------------------------------------------------------------------------------------ server
HealthCheck = Callable[[], tuple[bool, dict[str, Any]]]


def _always_ok() -> tuple[bool, dict[str, Any]]:
    return True, {}


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class MetricsServer:
    def __init__(self, httpd: WSGIServer, thread: threading.Thread) -> None:
        self.httpd = httpd
        self.thread = thread

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def wsgi_app(
    health: HealthCheck = _always_ok, *, name: str = "", registry: CollectorRegistry = REGISTRY
) -> Callable[..., Any]:
    """``/healthz`` (JSON) in front of prometheus_client's metrics app (``/metrics``, and ``/``)."""
    metrics_app = make_wsgi_app(registry)
    started = time.time()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            try:
                ok, details = health()
            except Exception as exc:  # a failing check is an unhealthy worker, not a 500
                ok, details = False, {"error": f"{type(exc).__name__}: {exc}"}
            body = json.dumps(
                {"status": "ok" if ok else "unhealthy", "name": name, "uptime_s": round(time.time() - started, 1)}
                | details,
                default=str,
            ).encode()
            start_response(
                "200 OK" if ok else "503 Service Unavailable",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
            )
            return [body]
        result: Iterable[bytes] = metrics_app(environ, start_response)
        return result

    return app


def start_metrics_server(
    port: int,
    *,
    host: str | None = None,
    health: HealthCheck = _always_ok,
    name: str = "",
    tries: int | None = None,
    registry: CollectorRegistry = REGISTRY,
) -> MetricsServer:
    """Serve ``/metrics`` and ``/healthz`` on ``host:port`` from a daemon thread. If the port is in
    use, the next ones are tried (``tries`` in all: ``Settings.metrics_port_tries``,
    ``IMGSEARCH_METRICS_PORT_TRIES``, default 20); port 0 picks any free port. ``host``:
    ``Settings.metrics_host`` (``IMGSEARCH_METRICS_HOST``, default 127.0.0.1: set 0.0.0.0 for a
    Prometheus on another host or container)."""
    host = host or "127.0.0.1"
    tries = tries or 20

    class Server(ThreadingWSGIServer):
        pass

    app = wsgi_app(health, name=name, registry=registry)
    last: OSError | None = None
    for candidate in [port] if port == 0 else range(port, port + max(1, tries)):
        try:
            httpd = make_server(host, candidate, app, Server, handler_class=_QuietHandler)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            last = exc
            continue
        thread = threading.Thread(target=httpd.serve_forever, name=f"metrics-{candidate}", daemon=True)
        thread.start()
        server = MetricsServer(httpd, thread)
        log.info("metrics on http://%s:%d/metrics, health on /healthz", host, server.port)
        return server
    raise OSError(errno.EADDRINUSE, f"no free metrics port in {port}..{port + tries - 1}") from last


# ------------------------------------------------------------------------------------------ faust
def _faust_sensor_class() -> type:
    import faust

    class PrometheusSensor(faust.Sensor):
        """Counts what flows through a faust app, per topic."""

        def __init__(self, role: str, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.role = role
            # (topic, partition, offset) -> when the event entered a stream; batched agents
            # (take_events) ack without the sensor state, so the start times are kept here
            self._t0: dict[tuple[str, int, int], float] = {}

        def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
            EVENTS_RECEIVED.labels(self.role, tp.topic).inc()

        def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> dict[str, Any] | None:
            if len(self._t0) > 100_000:  # events that never came out (crashed stream): forget them
                self._t0.clear()
            self._t0[(tp.topic, tp.partition, offset)] = time.perf_counter()
            return None

        def on_stream_event_out(
            self, tp: Any, offset: int, stream: Any, event: Any, state: dict[str, Any] | None = None
        ) -> None:
            EVENTS_PROCESSED.labels(self.role, tp.topic).inc()
            t0 = self._t0.pop((tp.topic, tp.partition, offset), None)
            if t0 is not None:
                EVENT_SECONDS.labels(self.role, tp.topic).observe(time.perf_counter() - t0)

        def on_send_error(self, producer: Any, exc: BaseException, state: Any) -> None:
            error(self.role, "send")

        def on_rebalance_start(self, app: Any) -> dict[str, Any]:
            REBALANCES.labels(self.role).inc()
            return {}

    return PrometheusSensor


def faust_health(app: Any) -> tuple[bool, dict[str, Any]]:
    """Healthy while the app runs, is not crashed or stopping and its consumer has been started."""
    crashed = bool(getattr(app, "crashed", False))
    started = bool(getattr(app, "started", False))
    stopping = bool(getattr(app, "should_stop", False))
    try:
        assigned = len(app.consumer.assignment())
    except Exception:
        assigned = 0
    rebalancing = bool(getattr(app, "rebalancing", False))
    ok = started and not crashed and not stopping
    return ok, {"app": app.conf.id, "assigned_partitions": assigned, "rebalancing": rebalancing}


def instrument_faust_app(
    app: Any,
    role: str,
    lags: Callable[[Any], list[tuple[str, int, int]]],
    port: int = 0,
    lag_interval_s: float = 5.0,
    host: str | None = None,
    tries: int | None = None,
) -> bool:
    """Metrics for one faust app: sensor, consumer-lag timer (``lags(app)``: (topic, partition, lag)
    of the app's assigned partitions, streams.faust_compat.consumer_lags), /metrics + /healthz server on
    ``port`` (``Settings.metrics_port``, ``IMGSEARCH_METRICS_PORT``; 0: no server and no instrumentation).
    Call it once, before the worker starts (e.g. at the end of ``streams.common.make_app``); calling it
    again is a no-op. Returns whether the app was instrumented."""
    if port <= 0 or getattr(app, "_imgsearch_metrics", False):
        return False
    app._imgsearch_metrics = True
    app.sensors.add(_faust_sensor_class()(role))
    servers: list[MetricsServer] = []

    @app.task
    async def _serve_metrics() -> None:
        servers.append(
            start_metrics_server(
                port, host=host, health=lambda: faust_health(app), name=f"{role}:{app.conf.id}", tries=tries
            )
        )

    @app.timer(interval=lag_interval_s)
    async def _consumer_lag() -> None:
        try:
            set_consumer_lag(role, lags(app))
        except Exception as exc:  # metrics never take a worker down
            log.debug("consumer lag not available: %s", exc)

    @app.on_before_shutdown.connect
    async def _stop_metrics(sender: Any, **kwargs: Any) -> None:
        for s in servers:
            s.stop()

    return True
