"""Configuration from environment variables, with local defaults. No secret has a default here,
and ``Settings.redacted()`` is what gets logged."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from schemas import topics
from schemas.events import EventType

REPO_ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    try:
        return default if raw in (None, "") else int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    try:
        return default if raw in (None, "") else float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be 1/0 (true/false), got {raw!r}")


def _env_floats(name: str, default: tuple[float, float, float]) -> tuple[float, float, float]:
    """Three comma-separated numbers (e.g. an R,G,B mean)."""
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        values = tuple(float(x) for x in raw.split(","))
    except ValueError as exc:
        raise ValueError(f"{name} must be three comma-separated numbers, got {raw!r}") from exc
    if len(values) != 3:
        raise ValueError(f"{name} must be three comma-separated numbers, got {raw!r}")
    return values[0], values[1], values[2]


# OpenAI CLIP's pixel statistics (open_clip's OPENAI_DATASET_MEAN / _STD), the ONNX CLIP default
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _default_event_weights() -> dict[EventType, float]:
    weights = {
        EventType.VIEW: 1.0,
        EventType.CLICK: 1.0,
        EventType.FAVORITE: 3.0,
        EventType.DOWNLOAD: 5.0,
        EventType.HIDE: -1.0,
        EventType.NOT_MY_STYLE: -3.0,
    }
    raw = os.environ.get("IMGSEARCH_EVENT_WEIGHTS", "")  # e.g. "view=1,favorite=3,download=5"
    for part in filter(None, (p.strip() for p in raw.split(","))):
        name, _, value = part.partition("=")
        try:
            weights[EventType(name.strip())] = float(value)
        except ValueError as exc:
            raise ValueError(f"IMGSEARCH_EVENT_WEIGHTS: bad entry {part!r}") from exc
    return weights


SECRET_FIELDS = {"opensearch_password", "kafka_sasl_password"}
# settings that hold a URL or a list of URLs / host:port addresses: logged with their userinfo redacted
URL_FIELDS = {"kafka_bootstrap", "opensearch_url", "gateway_jwt_jwks_url"}


def redact_url(url: str) -> str:
    """``url`` with the password of its userinfo (``scheme://user:password@host``) replaced by
    ``***``; a comma-separated list (a Kafka bootstrap) is redacted item by item. Anything without
    userinfo comes back unchanged. Use it on every URL that is logged or printed."""
    if "," in url:
        return ",".join(redact_url(part) for part in url.split(","))
    if "@" not in url:
        return url
    if "://" not in url:  # host:port with userinfo, e.g. "user:secret@broker:9092"
        userinfo, _, rest = url.rpartition("@")
        return f"{userinfo.partition(':')[0]}:***@{rest}" if ":" in userinfo else f"***@{rest}"
    try:
        parts = urlsplit(url)
    except ValueError:  # unparsable: keep nothing before the last "@"
        return "***@" + url.rpartition("@")[2]
    if "@" not in parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    netloc = f"{user}:***@{hostport}" if ":" in userinfo else f"***@{hostport}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap: str = field(default_factory=lambda: _env("KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    opensearch_url: str = field(default_factory=lambda: _env("OPENSEARCH_URL", "http://127.0.0.1:9200"))
    opensearch_user: str = field(default_factory=lambda: _env("OPENSEARCH_USER", ""))
    opensearch_password: str = field(default_factory=lambda: _env("OPENSEARCH_PASSWORD", ""))
    kafka_sasl_password: str = field(default_factory=lambda: _env("KAFKA_SASL_PASSWORD", ""))
    index_name: str = field(default_factory=lambda: _env("IMGSEARCH_INDEX", "imgsearch-images"))
    app_prefix: str = field(default_factory=lambda: _env("IMGSEARCH_APP_PREFIX", "imgsearch"))
    partitions: int = field(default_factory=lambda: _env_int("IMGSEARCH_PARTITIONS", 4))
    # copies of every topic we create (kafka_admin.ensure_topics, faust's own topics) and how many of
    # them an acks=all write needs (0: the broker's min.insync.replicas); `engines.sh --cluster env`: 3 / 2
    replication_factor: int = field(default_factory=lambda: _env_int("IMGSEARCH_REPLICATION_FACTOR", 1))
    min_insync_replicas: int = field(default_factory=lambda: _env_int("IMGSEARCH_MIN_INSYNC_REPLICAS", 0))
    # replicas of each shard of the vector index we create (0 on one node; 1 on the 2-node cluster)
    index_replicas: int = field(default_factory=lambda: _env_int("IMGSEARCH_INDEX_REPLICAS", 0))
    embedder: str = field(default_factory=lambda: _env("IMGSEARCH_EMBEDDER", "auto"))
    style: str = field(default_factory=lambda: _env("IMGSEARCH_STYLE", "auto"))  # auto|gram|handcrafted|embedding
    model_dir: str = field(default_factory=lambda: _env("IMGSEARCH_MODEL_DIR", ""))  # "": the set-up default
    # the learned heads (search + style), without suffix; "": the trained heads shipped in the package
    heads_path: str = field(default_factory=lambda: _env("IMGSEARCH_HEADS", ""))
    titan_dim: int = field(default_factory=lambda: _env_int("IMGSEARCH_TITAN_DIM", 1024))  # 256 | 384 | 1024
    hash_dim: int = field(default_factory=lambda: _env_int("IMGSEARCH_HASH_DIM", 64))
    # the ONNX CLIP embedder (IMGSEARCH_EMBEDDER=onnx_clip; docs/embeddings.md "ONNX CLIP backend"):
    # a directory with image_encoder.onnx, text_encoder.onnx, tokenizer.json, and/or the three files
    clip_dir: str = field(default_factory=lambda: _env("IMGSEARCH_CLIP_DIR", ""))
    clip_image_model: str = field(default_factory=lambda: _env("IMGSEARCH_CLIP_IMAGE_MODEL", ""))
    clip_text_model: str = field(default_factory=lambda: _env("IMGSEARCH_CLIP_TEXT_MODEL", ""))
    clip_tokenizer: str = field(default_factory=lambda: _env("IMGSEARCH_CLIP_TOKENIZER", ""))  # HF tokenizer.json
    clip_name: str = field(default_factory=lambda: _env("IMGSEARCH_CLIP_NAME", ""))  # part of the model id
    clip_image_size: int = field(default_factory=lambda: _env_int("IMGSEARCH_CLIP_IMAGE_SIZE", 0))  # 0: the graph's
    clip_mean: tuple[float, float, float] = field(default_factory=lambda: _env_floats("IMGSEARCH_CLIP_MEAN", CLIP_MEAN))
    clip_std: tuple[float, float, float] = field(default_factory=lambda: _env_floats("IMGSEARCH_CLIP_STD", CLIP_STD))
    clip_resize: str = field(default_factory=lambda: _env("IMGSEARCH_CLIP_RESIZE", "crop"))  # crop|pad|squash|trim_*
    clip_context_length: int = field(default_factory=lambda: _env_int("IMGSEARCH_CLIP_CONTEXT_LENGTH", 0))  # 0: 77
    clip_pad_id: int = field(default_factory=lambda: _env_int("IMGSEARCH_CLIP_PAD_ID", 0))
    clip_long_text: str = field(default_factory=lambda: _env("IMGSEARCH_CLIP_LONG_TEXT", "truncate"))  # or error
    ranker: str = field(default_factory=lambda: _env("IMGSEARCH_RANKER", "local"))  # local | personalize
    personalize_tracking_id: str = field(default_factory=lambda: _env("IMGSEARCH_PERSONALIZE_TRACKING_ID", ""))
    personalize_campaign_arn: str = field(default_factory=lambda: _env("IMGSEARCH_PERSONALIZE_CAMPAIGN_ARN", ""))
    personalize_max_calls_per_s: float = field(
        default_factory=lambda: _env_float("IMGSEARCH_PERSONALIZE_MAX_CALLS_PER_S", 50.0)
    )
    # a GetPersonalizedRanking filter, e.g. EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("not_my_style")
    personalize_filter_arn: str = field(default_factory=lambda: _env("IMGSEARCH_PERSONALIZE_FILTER_ARN", ""))
    personalization_weight: float = field(default_factory=lambda: _env_float("IMGSEARCH_PERSONALIZATION_WEIGHT", 0.5))
    # negative feedback: aversion (event-weight units) that halves a style's blended scores
    dislike_scale: float = field(default_factory=lambda: _env_float("IMGSEARCH_DISLIKE_SCALE", 3.0))
    blend_mode: str = field(default_factory=lambda: _env("IMGSEARCH_BLEND", "gated"))  # gated | linear
    # issue 15: the local ranker's personal score: "cluster" (the cluster profile) or "continuous" (the
    # candidate's style vector vs the user's interest medoids); the Personalize ranker stays on clusters
    affinity_mode: str = field(default_factory=lambda: _env("IMGSEARCH_AFFINITY", "cluster"))
    affinity_bandwidth: float = field(default_factory=lambda: _env_float("IMGSEARCH_AFFINITY_BANDWIDTH", 0.2))
    affinity_merge_sim: float = field(default_factory=lambda: _env_float("IMGSEARCH_AFFINITY_MERGE_SIM", 0.9))
    # issue 15: MMR diversity over the search vectors; 1 = pure relevance (today's order), per request too
    mmr_lambda: float = field(default_factory=lambda: _env_float("IMGSEARCH_MMR_LAMBDA", 1.0))
    candidate_multiplier: int = field(default_factory=lambda: _env_int("IMGSEARCH_CANDIDATES_MULTIPLIER", 5))
    min_candidates: int = field(default_factory=lambda: _env_int("IMGSEARCH_MIN_CANDIDATES", 50))
    # issue 15, two-source candidates: for a user with a signal, beside the global k-NN, the k-NN within
    # each of the user's STYLE_SOURCES best clusters (STYLE_CANDIDATES each), in one _msearch; 0 = off (the
    # default: no setting beat the baseline on validation; 1 and 50 were the best, docs/benchmarks.md).
    style_sources: int = field(default_factory=lambda: _env_int("IMGSEARCH_STYLE_SOURCES", 0))
    style_candidates: int = field(default_factory=lambda: _env_int("IMGSEARCH_STYLE_CANDIDATES", 50))
    # paging: rankings kept (per query worker) for later pages, and for how long
    ranking_cache_entries: int = field(default_factory=lambda: _env_int("IMGSEARCH_RANKING_CACHE_ENTRIES", 2000))
    ranking_cache_ttl_s: float = field(default_factory=lambda: _env_float("IMGSEARCH_RANKING_CACHE_TTL_S", 900.0))
    profile_half_life_s: float = field(
        default_factory=lambda: _env_float("IMGSEARCH_PROFILE_HALF_LIFE_S", 7 * 24 * 3600.0)
    )
    recency_weight: float = field(default_factory=lambda: _env_float("IMGSEARCH_RECENCY_WEIGHT", 0.6))
    session_decay: float = field(default_factory=lambda: _env_float("IMGSEARCH_SESSION_DECAY", 0.7))
    neighbour_strength: float = field(default_factory=lambda: _env_float("IMGSEARCH_NEIGHBOUR_STRENGTH", 0.5))
    new_user_policy: str = field(default_factory=lambda: _env("IMGSEARCH_NEW_USER", "relevance"))
    embed_batch: int = field(default_factory=lambda: _env_int("IMGSEARCH_EMBED_BATCH", 16))
    max_image_bytes: int = field(default_factory=lambda: _env_int("IMGSEARCH_MAX_IMAGE_BYTES", 8 * 2**20))
    max_image_pixels: int = field(default_factory=lambda: _env_int("IMGSEARCH_MAX_IMAGE_PIXELS", 40_000_000))
    allowed_uri_roots: str = field(default_factory=lambda: _env("IMGSEARCH_ALLOWED_URI_ROOTS", ""))
    unknown_image_wait_s: float = field(default_factory=lambda: _env_float("IMGSEARCH_UNKNOWN_IMAGE_WAIT_S", 10.0))
    # issue 14 item 5: an interaction for an image not indexed yet is parked on the retry topic and
    # tried this many times, unknown_image_wait_s / retries apart, before it is dead-lettered
    unknown_image_retries: int = field(default_factory=lambda: _env_int("IMGSEARCH_UNKNOWN_IMAGE_RETRIES", 5))
    # issue 14 item 6: interactions stamped further than this in the future are dead-lettered
    max_clock_skew_s: float = field(default_factory=lambda: _env_float("IMGSEARCH_MAX_CLOCK_SKEW_S", 300.0))
    # issue 14 item 7: decoded images are reduced to at most this side (the models see 224 px);
    # reading a file gives up after read_timeout_s
    decode_max_side: int = field(default_factory=lambda: _env_int("IMGSEARCH_DECODE_MAX_SIDE", 1024))
    read_timeout_s: float = field(default_factory=lambda: _env_float("IMGSEARCH_READ_TIMEOUT_S", 5.0))
    # issue 14 item 15: retention of the user-keyed event topics (raw interactions, their retries,
    # personalization events, dead letters), and how soon a forgotten profile is compacted away
    event_retention_ms: int = field(default_factory=topics.event_retention_ms)
    # Amazon Personalize data deletion (imgsearch forget with IMGSEARCH_RANKER=personalize)
    personalize_dataset_group_arn: str = field(
        default_factory=lambda: _env("IMGSEARCH_PERSONALIZE_DATASET_GROUP_ARN", "")
    )
    personalize_deletion_role_arn: str = field(
        default_factory=lambda: _env("IMGSEARCH_PERSONALIZE_DELETION_ROLE_ARN", "")
    )
    personalize_deletion_s3: str = field(default_factory=lambda: _env("IMGSEARCH_PERSONALIZE_DELETION_S3", ""))
    data_dir: str = field(default_factory=lambda: _env("IMGSEARCH_DATA", str(REPO_ROOT / ".engines")))
    web_port: int = field(default_factory=lambda: _env_int("IMGSEARCH_WORKER_WEB_PORT", 0))
    # the testcontainers path of the integration fixtures (imgsearch/runner.py, issue 18): the images and
    # the host ports the containers listen on (host networking; the same variables as scripts/engines.sh)
    use_testcontainers: bool = field(default_factory=lambda: _env_bool("IMGSEARCH_USE_TESTCONTAINERS", False))
    kafka_image: str = field(default_factory=lambda: _env("IMGSEARCH_KAFKA_IMAGE", "apache/kafka:4.1.1"))
    opensearch_image: str = field(
        default_factory=lambda: _env("IMGSEARCH_OPENSEARCH_IMAGE", "opensearchproject/opensearch:2.19.1")
    )
    engine_kafka_port: int = field(default_factory=lambda: _env_int("KAFKA_PORT", 9092))
    engine_kafka_controller_port: int = field(default_factory=lambda: _env_int("KAFKA_CONTROLLER_PORT", 9093))
    engine_opensearch_port: int = field(default_factory=lambda: _env_int("OPENSEARCH_PORT", 9200))
    engine_opensearch_transport_port: int = field(default_factory=lambda: _env_int("OPENSEARCH_TRANSPORT_PORT", 9300))
    # the address faust's web server (IMGSEARCH_WORKER_WEB_PORT) and the metrics server bind to:
    # loopback unless a deployment opens them (e.g. 0.0.0.0 for a Prometheus in another container)
    web_host: str = field(default_factory=lambda: _env("IMGSEARCH_WORKER_WEB_HOST", "127.0.0.1"))
    metrics_host: str = field(default_factory=lambda: _env("IMGSEARCH_METRICS_HOST", "127.0.0.1"))
    # the gateway's authentication (imgsearch/gateway/auth.py, docs/operations.md "Gateway trust"):
    # "jwt", "api_key" or both ("jwt,api_key"); "demo" = none at all (anyone acts as any user, loudly)
    gateway_auth: str = field(default_factory=lambda: _env("IMGSEARCH_GATEWAY_AUTH", ""))
    gateway_jwt_key_file: str = field(default_factory=lambda: _env("IMGSEARCH_GATEWAY_JWT_KEY_FILE", ""))
    gateway_jwt_jwks_url: str = field(default_factory=lambda: _env("IMGSEARCH_GATEWAY_JWT_JWKS_URL", ""))
    gateway_jwt_algorithms: str = field(default_factory=lambda: _env("IMGSEARCH_GATEWAY_JWT_ALGORITHMS", "RS256,ES256"))
    gateway_jwt_audience: str = field(default_factory=lambda: _env("IMGSEARCH_GATEWAY_JWT_AUDIENCE", ""))
    gateway_jwt_issuer: str = field(default_factory=lambda: _env("IMGSEARCH_GATEWAY_JWT_ISSUER", ""))
    gateway_jwt_user_claim: str = field(default_factory=lambda: _env("IMGSEARCH_GATEWAY_JWT_USER_CLAIM", "sub"))
    gateway_jwt_leeway_s: float = field(default_factory=lambda: _env_float("IMGSEARCH_GATEWAY_JWT_LEEWAY_S", 30.0))
    gateway_api_keys_file: str = field(default_factory=lambda: _env("IMGSEARCH_GATEWAY_API_KEYS_FILE", ""))
    # origins besides the gateway's own that may send state-changing requests (CSRF check), comma-separated
    gateway_allowed_origins: str = field(default_factory=lambda: _env("IMGSEARCH_GATEWAY_ALLOWED_ORIGINS", ""))
    # run workers on faust-streaming / mode-streaming versions other than the tested ones (streams/common.py)
    allow_untested_faust: bool = field(default_factory=lambda: _env_bool("IMGSEARCH_ALLOW_UNTESTED_FAUST", False))
    event_weights: dict[EventType, float] = field(default_factory=_default_event_weights)

    def __post_init__(self) -> None:
        if self.replication_factor < 1:
            raise ValueError(f"IMGSEARCH_REPLICATION_FACTOR must be at least 1, got {self.replication_factor}")
        if not 0 <= self.min_insync_replicas <= self.replication_factor:
            raise ValueError(
                f"IMGSEARCH_MIN_INSYNC_REPLICAS must be 0 (the broker's default) .. the replication factor "
                f"({self.replication_factor}), got {self.min_insync_replicas}"
            )
        if self.index_replicas < 0:
            raise ValueError(f"IMGSEARCH_INDEX_REPLICAS must be at least 0, got {self.index_replicas}")
        if self.affinity_mode not in ("cluster", "continuous"):
            raise ValueError(f"IMGSEARCH_AFFINITY must be cluster or continuous, got {self.affinity_mode!r}")
        if not 0.0 <= self.mmr_lambda <= 1.0:
            raise ValueError(f"IMGSEARCH_MMR_LAMBDA must be in [0, 1], got {self.mmr_lambda}")
        if self.affinity_bandwidth <= 0 or not -1.0 <= self.affinity_merge_sim <= 1.0:
            raise ValueError("IMGSEARCH_AFFINITY_BANDWIDTH must be > 0 and IMGSEARCH_AFFINITY_MERGE_SIM in [-1, 1]")

    def redacted(self) -> dict[str, object]:
        out = asdict(self)
        for name in SECRET_FIELDS:
            if out.get(name):
                out[name] = "***"
        for name in URL_FIELDS:
            if out.get(name):
                out[name] = redact_url(str(out[name]))
        return out

    def clip_files(self) -> tuple[Path, Path, Path]:
        """(image encoder, text encoder, tokenizer) of the ONNX CLIP embedder: each file setting, or
        its default name inside IMGSEARCH_CLIP_DIR."""
        base = Path(self.clip_dir) if self.clip_dir else None
        chosen = []
        for value, default, env in (
            (self.clip_image_model, "image_encoder.onnx", "IMGSEARCH_CLIP_IMAGE_MODEL"),
            (self.clip_text_model, "text_encoder.onnx", "IMGSEARCH_CLIP_TEXT_MODEL"),
            (self.clip_tokenizer, "tokenizer.json", "IMGSEARCH_CLIP_TOKENIZER"),
        ):
            if value:
                chosen.append(Path(value))
            elif base is not None:
                chosen.append(base / default)
            else:
                raise ValueError(f"IMGSEARCH_EMBEDDER=onnx_clip needs IMGSEARCH_CLIP_DIR or {env}")
        return chosen[0], chosen[1], chosen[2]

    def app_id(self, role: str) -> str:
        return f"{self.app_prefix}-{role}"


def settings_field_names() -> list[str]:
    return [f.name for f in fields(Settings)]


# interim (bench helper); the config helper's versions replace these
# The environment variable of each setting a run may override by keyword (``Settings(index_name=...)``);
# the other settings were read from the process environment, which a child inherits anyway.
_CHILD_ENV_NAMES = {
    "kafka_bootstrap": "KAFKA_BOOTSTRAP",
    "opensearch_url": "OPENSEARCH_URL",
    "index_name": "IMGSEARCH_INDEX",
    "app_prefix": "IMGSEARCH_APP_PREFIX",
    "partitions": "IMGSEARCH_PARTITIONS",
    "data_dir": "IMGSEARCH_DATA",
    "allowed_uri_roots": "IMGSEARCH_ALLOWED_URI_ROOTS",
    "unknown_image_wait_s": "IMGSEARCH_UNKNOWN_IMAGE_WAIT_S",
}


def child_env(settings: Settings) -> dict[str, str]:
    """The environment of a child process (a worker) that is to run with ``settings``
    (``settings.child_env()`` in the config helper's version)."""
    return {**os.environ, **{env: str(getattr(settings, name)) for name, env in _CHILD_ENV_NAMES.items()}}
