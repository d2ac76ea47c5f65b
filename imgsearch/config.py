"""The one configuration of a run: a typed ``Settings`` read from the environment here and nowhere
else, with local defaults. No secret has a default (secrets are ``SecretStr``), and
``Settings.redacted()`` is what gets logged.

- ``Settings()`` reads this process's environment; ``Settings(partitions=2, ...)`` sets fields by
  name on top of it; ``Settings.from_env(mapping)`` reads only ``mapping``.
- A run is configured by passing the object; a child process (a worker) gets
  ``settings.child_env()`` on top of ``process_environment()`` and rebuilds the same object.
- Every field reads the environment variable named by its alias (``IMGSEARCH_*``, ``KAFKA_*``,
  ``OPENSEARCH_*``); an empty value means the default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

from schemas.events import EventType
from schemas.topics import DEFAULT_EVENT_RETENTION_MS, Topics

REPO_ROOT = Path(__file__).resolve().parent.parent

# OpenAI CLIP's pixel statistics (open_clip's OPENAI_DATASET_MEAN / _STD), the ONNX CLIP default
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def process_environment() -> dict[str, str]:
    """A copy of this process's environment: what a child process inherits before ``child_env()``
    (and what ``Settings()`` reads). The one place product code and tests read ``os.environ``."""
    return dict(os.environ)


@lru_cache(maxsize=1)
def default_settings() -> Settings:
    """The built-in defaults, read from no environment: what a library object uses when it is given
    no settings (a PLAINTEXT Kafka client, an unauthenticated OpenSearch client, replication 1).
    Everything a run configures comes in a ``Settings`` passed explicitly."""
    return Settings.from_env({})


def environment_cache_path() -> Path:
    """The cache directory this process's environment names (``IMGSEARCH_CACHE``, default
    ``~/.cache/imgsearch``): the default of the tools and helpers (model build, data sets, wheels,
    benchmarks) that are not given a directory or settings. A run uses ``settings.cache_path``."""
    return Settings().cache_path


def default_event_weights() -> dict[EventType, float]:
    return {
        EventType.VIEW: 1.0,
        EventType.CLICK: 1.0,
        EventType.FAVORITE: 3.0,
        EventType.DOWNLOAD: 5.0,
        EventType.HIDE: -1.0,
        EventType.NOT_MY_STYLE: -3.0,
    }


def parse_event_weights(raw: str) -> dict[EventType, float]:
    """``IMGSEARCH_EVENT_WEIGHTS``, e.g. "view=1,favorite=3,download=5", over the defaults."""
    weights = default_event_weights()
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


# the mapping Settings.from_env reads instead of os.environ (None: os.environ)
_SOURCE_ENV: ContextVar[Mapping[str, str] | None] = ContextVar("imgsearch_settings_env", default=None)


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source, reading ``from_env``'s mapping when one is given."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        env = _SOURCE_ENV.get()
        if env is None:
            return super()._load_env_vars()
        return parse_env_vars(env, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


def _env(name: str, *more: str) -> Any:
    return AliasChoices(name, *more) if more else name


# per-field wording of a bad value, where it is not the generic "must be an integer / a number"
_MESSAGES = {"event_retention_ms": "{name} must be an integer (ms), got {raw!r}"}


class Settings(BaseSettings):
    kafka_bootstrap: str = Field("127.0.0.1:9092", validation_alias=_env("KAFKA_BOOTSTRAP"))
    opensearch_url: str = Field("http://127.0.0.1:9200", validation_alias=_env("OPENSEARCH_URL"))
    opensearch_user: str = Field("", validation_alias=_env("OPENSEARCH_USER"))
    opensearch_password: SecretStr = Field(SecretStr(""), validation_alias=_env("OPENSEARCH_PASSWORD"))
    kafka_sasl_password: SecretStr = Field(SecretStr(""), validation_alias=_env("KAFKA_SASL_PASSWORD"))
    index_name: str = Field("imgsearch-images", validation_alias=_env("IMGSEARCH_INDEX"))
    app_prefix: str = Field("imgsearch", validation_alias=_env("IMGSEARCH_APP_PREFIX"))
    partitions: int = Field(4, validation_alias=_env("IMGSEARCH_PARTITIONS"))
    # copies of every topic we create (kafka.admin.ensure_topics, faust's own topics) and how many of
    # them an acks=all write needs (0: the broker's min.insync.replicas); `engines.sh --cluster env`: 3 / 2
    replication_factor: int = Field(1, validation_alias=_env("IMGSEARCH_REPLICATION_FACTOR"))
    min_insync_replicas: int = Field(0, validation_alias=_env("IMGSEARCH_MIN_INSYNC_REPLICAS"))
    # A worker's consumer-group session: a worker that stops heartbeating (killed, frozen) for this
    # long loses its partitions to the others (or to its replacement), so it bounds how long a role
    # stalls after a crash (docs/operations.md "Scale"). faust's default is 60 s; 6 s (the broker's
    # group.min.session.timeout.ms) .. 90 s (faust's request timeout, which it must not exceed). Heartbeats go out
    # every heartbeat interval, at most a third of the session. In a rebalance, the group waits up to
    # the rebalance timeout for its live members to rejoin (a worker first finishes the events it holds).
    # faust reads none of its own variables (BROKER_SESSION_TIMEOUT, ...): these are the only knobs.
    kafka_session_timeout_s: float = Field(10.0, validation_alias=_env("IMGSEARCH_KAFKA_SESSION_TIMEOUT_S"))
    kafka_heartbeat_interval_s: float = Field(2.0, validation_alias=_env("IMGSEARCH_KAFKA_HEARTBEAT_INTERVAL_S"))
    kafka_rebalance_timeout_s: float = Field(60.0, validation_alias=_env("IMGSEARCH_KAFKA_REBALANCE_TIMEOUT_S"))
    # replicas of each shard of the vector index we create (0 on one node; 1 on the 2-node cluster)
    index_replicas: int = Field(0, validation_alias=_env("IMGSEARCH_INDEX_REPLICAS"))
    embedder: str = Field("auto", validation_alias=_env("IMGSEARCH_EMBEDDER"))
    style: str = Field("auto", validation_alias=_env("IMGSEARCH_STYLE"))  # auto|gram|handcrafted|embedding
    model_dir: str = Field("", validation_alias=_env("IMGSEARCH_MODEL_DIR"))  # "": the set-up default
    # the learned heads (search + style), without suffix; "": the trained heads shipped in the package
    heads_path: str = Field("", validation_alias=_env("IMGSEARCH_HEADS"))
    titan_dim: int = Field(1024, validation_alias=_env("IMGSEARCH_TITAN_DIM"))  # 256 | 384 | 1024
    hash_dim: int = Field(64, validation_alias=_env("IMGSEARCH_HASH_DIM"))
    # the ONNX CLIP embedder (IMGSEARCH_EMBEDDER=onnx_clip; docs/embeddings.md "ONNX CLIP backend"):
    # a directory with image_encoder.onnx, text_encoder.onnx, tokenizer.json, and/or the three files
    clip_dir: str = Field("", validation_alias=_env("IMGSEARCH_CLIP_DIR"))
    clip_image_model: str = Field("", validation_alias=_env("IMGSEARCH_CLIP_IMAGE_MODEL"))
    clip_text_model: str = Field("", validation_alias=_env("IMGSEARCH_CLIP_TEXT_MODEL"))
    clip_tokenizer: str = Field("", validation_alias=_env("IMGSEARCH_CLIP_TOKENIZER"))  # HF tokenizer.json
    clip_name: str = Field("", validation_alias=_env("IMGSEARCH_CLIP_NAME"))  # part of the model id
    clip_image_size: int = Field(0, validation_alias=_env("IMGSEARCH_CLIP_IMAGE_SIZE"))  # 0: the graph's
    clip_mean: tuple[float, float, float] = Field(CLIP_MEAN, validation_alias=_env("IMGSEARCH_CLIP_MEAN"))
    clip_std: tuple[float, float, float] = Field(CLIP_STD, validation_alias=_env("IMGSEARCH_CLIP_STD"))
    clip_resize: str = Field("crop", validation_alias=_env("IMGSEARCH_CLIP_RESIZE"))  # crop|pad|squash|trim_*
    clip_context_length: int = Field(0, validation_alias=_env("IMGSEARCH_CLIP_CONTEXT_LENGTH"))  # 0: 77
    clip_pad_id: int = Field(0, validation_alias=_env("IMGSEARCH_CLIP_PAD_ID"))
    clip_long_text: str = Field("truncate", validation_alias=_env("IMGSEARCH_CLIP_LONG_TEXT"))  # or error
    ranker: str = Field("local", validation_alias=_env("IMGSEARCH_RANKER"))  # local | personalize
    personalize_tracking_id: str = Field("", validation_alias=_env("IMGSEARCH_PERSONALIZE_TRACKING_ID"))
    personalize_campaign_arn: str = Field("", validation_alias=_env("IMGSEARCH_PERSONALIZE_CAMPAIGN_ARN"))
    personalize_max_calls_per_s: float = Field(50.0, validation_alias=_env("IMGSEARCH_PERSONALIZE_MAX_CALLS_PER_S"))
    # a GetPersonalizedRanking filter, e.g. EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("not_my_style")
    personalize_filter_arn: str = Field("", validation_alias=_env("IMGSEARCH_PERSONALIZE_FILTER_ARN"))
    personalization_weight: float = Field(0.5, validation_alias=_env("IMGSEARCH_PERSONALIZATION_WEIGHT"))
    # negative feedback: aversion (event-weight units) that halves a style's blended scores
    dislike_scale: float = Field(3.0, validation_alias=_env("IMGSEARCH_DISLIKE_SCALE"))
    blend_mode: str = Field("gated", validation_alias=_env("IMGSEARCH_BLEND"))  # gated | linear
    # issue 15: the local ranker's personal score: "cluster" (the cluster profile) or "continuous" (the
    # candidate's style vector vs the user's interest medoids); the Personalize ranker stays on clusters
    affinity_mode: str = Field("cluster", validation_alias=_env("IMGSEARCH_AFFINITY"))
    affinity_bandwidth: float = Field(0.2, validation_alias=_env("IMGSEARCH_AFFINITY_BANDWIDTH"))
    affinity_merge_sim: float = Field(0.9, validation_alias=_env("IMGSEARCH_AFFINITY_MERGE_SIM"))
    # issue 15: MMR diversity over the search vectors; 1 = pure relevance (today's order), per request too
    mmr_lambda: float = Field(1.0, validation_alias=_env("IMGSEARCH_MMR_LAMBDA"))
    # issue 16: HNSW's ef_search for the k-NN queries; None = lucene's own (ef = k). Larger finds more of
    # the true nearest at a large catalog, at some latency (bench/scale.py, docs/benchmarks.md)
    knn_ef_search: int | None = Field(None, ge=1, le=10_000, validation_alias=_env("IMGSEARCH_KNN_EF_SEARCH"))
    candidate_multiplier: int = Field(5, validation_alias=_env("IMGSEARCH_CANDIDATES_MULTIPLIER"))
    min_candidates: int = Field(50, validation_alias=_env("IMGSEARCH_MIN_CANDIDATES"))
    # issue 15, two-source candidates: for a user with a signal, beside the global k-NN, the k-NN within
    # each of the user's STYLE_SOURCES best clusters (STYLE_CANDIDATES each), in one _msearch; 0 = off (the
    # default: no setting beat the baseline on validation; 1 and 50 were the best, docs/benchmarks.md).
    style_sources: int = Field(0, validation_alias=_env("IMGSEARCH_STYLE_SOURCES"))
    style_candidates: int = Field(50, validation_alias=_env("IMGSEARCH_STYLE_CANDIDATES"))
    # issue 16: search requests one query worker answers at once (faust agent concurrency): while one
    # waits on OpenSearch or the reply, the next is embedded; offsets are committed in order all the same
    query_concurrency: int = Field(4, validation_alias=_env("IMGSEARCH_QUERY_CONCURRENCY"))
    # paging: rankings kept (per query worker) for later pages, and for how long
    ranking_cache_entries: int = Field(2000, validation_alias=_env("IMGSEARCH_RANKING_CACHE_ENTRIES"))
    ranking_cache_ttl_s: float = Field(900.0, validation_alias=_env("IMGSEARCH_RANKING_CACHE_TTL_S"))
    profile_half_life_s: float = Field(7 * 24 * 3600.0, validation_alias=_env("IMGSEARCH_PROFILE_HALF_LIFE_S"))
    recency_weight: float = Field(0.6, validation_alias=_env("IMGSEARCH_RECENCY_WEIGHT"))
    session_decay: float = Field(0.7, validation_alias=_env("IMGSEARCH_SESSION_DECAY"))
    neighbour_strength: float = Field(0.5, validation_alias=_env("IMGSEARCH_NEIGHBOUR_STRENGTH"))
    new_user_policy: str = Field("relevance", validation_alias=_env("IMGSEARCH_NEW_USER"))
    embed_batch: int = Field(16, validation_alias=_env("IMGSEARCH_EMBED_BATCH"))
    # issue 16: threads of each ONNX session (onnxruntime intra-op); 0: onnxruntime's default, one per
    # core. n embedding workers on one machine: cores / n each, or they oversubscribe the CPUs
    embed_threads: int = Field(0, validation_alias=_env("IMGSEARCH_EMBED_THREADS"))
    max_image_bytes: int = Field(8 * 2**20, validation_alias=_env("IMGSEARCH_MAX_IMAGE_BYTES"))
    max_image_pixels: int = Field(40_000_000, validation_alias=_env("IMGSEARCH_MAX_IMAGE_PIXELS"))
    allowed_uri_roots: str = Field("", validation_alias=_env("IMGSEARCH_ALLOWED_URI_ROOTS"))
    unknown_image_wait_s: float = Field(10.0, validation_alias=_env("IMGSEARCH_UNKNOWN_IMAGE_WAIT_S"))
    # issue 14 item 5: an interaction for an image not indexed yet is parked on the retry topic and
    # tried this many times, unknown_image_wait_s / retries apart, before it is dead-lettered
    unknown_image_retries: int = Field(5, validation_alias=_env("IMGSEARCH_UNKNOWN_IMAGE_RETRIES"))
    # issue 14 item 6: interactions stamped further than this in the future are dead-lettered
    max_clock_skew_s: float = Field(300.0, validation_alias=_env("IMGSEARCH_MAX_CLOCK_SKEW_S"))
    # issue 14 item 7: decoded images are reduced to at most this side (the models see 224 px);
    # reading a file gives up after read_timeout_s
    decode_max_side: int = Field(1024, validation_alias=_env("IMGSEARCH_DECODE_MAX_SIDE"))
    read_timeout_s: float = Field(5.0, validation_alias=_env("IMGSEARCH_READ_TIMEOUT_S"))
    # issue 14 item 15: retention of the user-keyed event topics (raw interactions, their retries,
    # personalization events, dead letters), and how soon a forgotten profile is compacted away
    event_retention_ms: int = Field(DEFAULT_EVENT_RETENTION_MS, validation_alias=_env("IMGSEARCH_EVENT_RETENTION_MS"))
    # Amazon Personalize data deletion (imgsearch forget with IMGSEARCH_RANKER=personalize)
    personalize_dataset_group_arn: str = Field("", validation_alias=_env("IMGSEARCH_PERSONALIZE_DATASET_GROUP_ARN"))
    personalize_deletion_role_arn: str = Field("", validation_alias=_env("IMGSEARCH_PERSONALIZE_DELETION_ROLE_ARN"))
    personalize_deletion_s3: str = Field("", validation_alias=_env("IMGSEARCH_PERSONALIZE_DELETION_S3"))
    data_dir: str = Field(str(REPO_ROOT / ".engines"), validation_alias=_env("IMGSEARCH_DATA"))
    web_port: int = Field(0, validation_alias=_env("IMGSEARCH_WORKER_WEB_PORT"))
    # the testcontainers path of the integration fixtures (consumers/runner.py, issue 18): the images and
    # the host ports the containers listen on (host networking; the same variables as scripts/engines.sh)
    use_testcontainers: bool = Field(False, validation_alias=_env("IMGSEARCH_USE_TESTCONTAINERS"))
    kafka_image: str = Field("apache/kafka:4.1.1", validation_alias=_env("IMGSEARCH_KAFKA_IMAGE"))
    opensearch_image: str = Field(
        "opensearchproject/opensearch:2.19.1", validation_alias=_env("IMGSEARCH_OPENSEARCH_IMAGE")
    )
    engine_kafka_port: int = Field(9092, validation_alias=_env("KAFKA_PORT"))
    engine_kafka_controller_port: int = Field(9093, validation_alias=_env("KAFKA_CONTROLLER_PORT"))
    engine_opensearch_port: int = Field(9200, validation_alias=_env("OPENSEARCH_PORT"))
    engine_opensearch_transport_port: int = Field(9300, validation_alias=_env("OPENSEARCH_TRANSPORT_PORT"))
    # the address faust's web server (IMGSEARCH_WORKER_WEB_PORT) and the metrics server bind to:
    # loopback unless a deployment opens them (e.g. 0.0.0.0 for a Prometheus in another container)
    web_host: str = Field("127.0.0.1", validation_alias=_env("IMGSEARCH_WORKER_WEB_HOST"))
    metrics_host: str = Field("127.0.0.1", validation_alias=_env("IMGSEARCH_METRICS_HOST"))
    # the gateway's authentication (apps/gateway/auth.py, docs/operations.md "Gateway trust"):
    # "jwt", "api_key" or both ("jwt,api_key"); "demo" = none at all (anyone acts as any user, loudly)
    gateway_auth: str = Field("", validation_alias=_env("IMGSEARCH_GATEWAY_AUTH"))
    gateway_jwt_key_file: str = Field("", validation_alias=_env("IMGSEARCH_GATEWAY_JWT_KEY_FILE"))
    gateway_jwt_jwks_url: str = Field("", validation_alias=_env("IMGSEARCH_GATEWAY_JWT_JWKS_URL"))
    gateway_jwt_algorithms: str = Field("RS256,ES256", validation_alias=_env("IMGSEARCH_GATEWAY_JWT_ALGORITHMS"))
    gateway_jwt_audience: str = Field("", validation_alias=_env("IMGSEARCH_GATEWAY_JWT_AUDIENCE"))
    gateway_jwt_issuer: str = Field("", validation_alias=_env("IMGSEARCH_GATEWAY_JWT_ISSUER"))
    gateway_jwt_user_claim: str = Field("sub", validation_alias=_env("IMGSEARCH_GATEWAY_JWT_USER_CLAIM"))
    gateway_jwt_leeway_s: float = Field(30.0, validation_alias=_env("IMGSEARCH_GATEWAY_JWT_LEEWAY_S"))
    gateway_api_keys_file: str = Field("", validation_alias=_env("IMGSEARCH_GATEWAY_API_KEYS_FILE"))
    # origins besides the gateway's own that may send state-changing requests (CSRF check), comma-separated
    gateway_allowed_origins: str = Field("", validation_alias=_env("IMGSEARCH_GATEWAY_ALLOWED_ORIGINS"))
    # run workers on faust-streaming / mode-streaming versions other than the tested ones (streams/common.py)
    allow_untested_faust: bool = Field(False, validation_alias=_env("IMGSEARCH_ALLOW_UNTESTED_FAUST"))
    # IMGSEARCH_EVENT_WEIGHTS, e.g. "view=1,favorite=3,download=5": over the defaults
    event_weights: dict[EventType, float] = Field(
        default_factory=default_event_weights, validation_alias=_env("IMGSEARCH_EVENT_WEIGHTS")
    )

    # --- set in one place since issue 13 (they were read where they were used)
    # the topic names' prefix (schemas/topics.py; settings.topics)
    topic_prefix: str = Field("imgsearch", validation_alias=_env("IMGSEARCH_TOPIC_PREFIX"))
    log_level: str = Field("INFO", validation_alias=_env("IMGSEARCH_LOG_LEVEL"))
    # the search client's Kafka principal (it may only read its own reply topic: producers/search_client.py)
    kafka_sasl_username: str = Field("", validation_alias=_env("KAFKA_SASL_USERNAME"))
    # how every client connects (imgsearch/connections.py; docs/operations.md "Security"): Kafka's
    # PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL, its TLS files and SASL mechanism, and OpenSearch's
    # none | basic | sigv4 ("": basic when OPENSEARCH_USER is set, else none), CA bundle and region.
    # A password may come from a file instead (*_PASSWORD_FILE: a mounted secret, read when a client is made)
    kafka_security_protocol: str = Field("PLAINTEXT", validation_alias=_env("KAFKA_SECURITY_PROTOCOL"))
    kafka_ssl_cafile: str = Field("", validation_alias=_env("KAFKA_SSL_CAFILE"))
    kafka_ssl_certfile: str = Field("", validation_alias=_env("KAFKA_SSL_CERTFILE"))
    kafka_ssl_keyfile: str = Field("", validation_alias=_env("KAFKA_SSL_KEYFILE"))
    kafka_sasl_mechanism: str = Field("SCRAM-SHA-512", validation_alias=_env("KAFKA_SASL_MECHANISM"))
    kafka_sasl_password_file: str = Field("", validation_alias=_env("KAFKA_SASL_PASSWORD_FILE"))
    opensearch_auth: str = Field("", validation_alias=_env("OPENSEARCH_AUTH"))
    opensearch_password_file: str = Field("", validation_alias=_env("OPENSEARCH_PASSWORD_FILE"))
    opensearch_ca_certs: str = Field("", validation_alias=_env("OPENSEARCH_CA_CERTS"))
    opensearch_verify_certs: bool = Field(True, validation_alias=_env("OPENSEARCH_VERIFY_CERTS"))
    opensearch_aws_region: str = Field("", validation_alias=_env("OPENSEARCH_AWS_REGION"))
    opensearch_aws_service: str = Field("es", validation_alias=_env("OPENSEARCH_AWS_SERVICE"))
    # models, data sets and wheels downloaded or built once (scripts/setup_*.sh); "": ~/.cache/imgsearch
    cache_dir: str = Field("", validation_alias=_env("IMGSEARCH_CACHE"))
    # the web gateway (apps/gateway): its address, the users its page offers, its search timeout
    gateway_host: str = Field("127.0.0.1", validation_alias=_env("IMGSEARCH_GATEWAY_HOST"))
    gateway_port: int = Field(8080, validation_alias=_env("IMGSEARCH_GATEWAY_PORT"))
    gateway_users: str = Field("alice,bob", validation_alias=_env("IMGSEARCH_GATEWAY_USERS"))
    gateway_search_timeout_s: float = Field(5.0, validation_alias=_env("IMGSEARCH_GATEWAY_SEARCH_TIMEOUT_S"))
    # a worker's /metrics + /healthz port (0: none) and how many ports from it are tried if it is taken
    metrics_port: int = Field(0, validation_alias=_env("IMGSEARCH_METRICS_PORT"))
    metrics_port_tries: int = Field(20, validation_alias=_env("IMGSEARCH_METRICS_PORT_TRIES"))
    # k-means in-process ("local") or on Amazon SageMaker ("sagemaker": jobs/sagemaker_kmeans.py)
    kmeans_backend: str = Field("local", validation_alias=_env("IMGSEARCH_KMEANS_BACKEND"))
    sagemaker_role_arn: str = Field("", validation_alias=_env("IMGSEARCH_SAGEMAKER_ROLE_ARN"))
    sagemaker_bucket: str = Field("", validation_alias=_env("IMGSEARCH_SAGEMAKER_BUCKET"))
    sagemaker_prefix: str = Field("imgsearch/kmeans", validation_alias=_env("IMGSEARCH_SAGEMAKER_PREFIX"))
    sagemaker_image: str = Field("", validation_alias=_env("IMGSEARCH_SAGEMAKER_IMAGE"))
    aws_region: str = Field("us-east-1", validation_alias=_env("AWS_REGION", "AWS_DEFAULT_REGION"))

    model_config = SettingsConfigDict(
        frozen=True,
        populate_by_name=True,  # Settings(partitions=2) as well as the variable's name
        case_sensitive=True,
        env_ignore_empty=True,  # an empty variable means the default, as it always did
        enable_decoding=False,  # no JSON in variables: the validators below parse their text
        extra="forbid",
        hide_input_in_errors=True,  # a secret never appears in an error message
    )

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise _plain(exc) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # keywords first, then the environment (or from_env's mapping); no .env file, no secrets dir
        return init_settings, _Environment(settings_cls)

    @classmethod
    def from_env(cls, env: Mapping[str, str], **changes: Any) -> Settings:
        """The settings ``env`` describes (and nothing else: this process's environment is not read),
        with ``changes`` (fields by name) on top."""
        token = _SOURCE_ENV.set(env)
        try:
            return cls(**changes)
        finally:
            _SOURCE_ENV.reset(token)

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` (fields by name), validated like a new one."""
        values = {name: getattr(self, name) for name in type(self).model_fields}
        try:
            return type(self).model_validate({**values, **changes})
        except ValidationError as exc:
            raise _plain(exc) from None

    @field_validator("*", mode="before")
    @classmethod
    def _parse_text(cls, value: Any, info: ValidationInfo) -> Any:
        """A variable's text as the field's type, with a message that names the variable."""
        if not isinstance(value, str) or info.field_name is None:
            return value
        name = env_names(info.field_name)[0]
        kind = cls.model_fields[info.field_name].annotation
        if info.field_name == "event_weights":
            return parse_event_weights(value)
        message = _MESSAGES.get(info.field_name)
        try:
            if kind is int:
                return int(value)
            if kind is float:
                return float(value)
        except ValueError as exc:
            noun = "an integer" if kind is int else "a number"
            raise ValueError(
                (message or "{name} must be " + noun + ", got {raw!r}").format(name=name, raw=value)
            ) from exc
        if kind is bool:
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"{name} must be 1/0 (true/false), got {value!r}")
        if kind == tuple[float, float, float]:  # three comma-separated numbers (e.g. an R,G,B mean)
            try:
                values = tuple(float(x) for x in value.split(","))
            except ValueError as exc:
                raise ValueError(f"{name} must be three comma-separated numbers, got {value!r}") from exc
            if len(values) != 3:
                raise ValueError(f"{name} must be three comma-separated numbers, got {value!r}")
            return values
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.replication_factor < 1:
            raise ValueError(f"IMGSEARCH_REPLICATION_FACTOR must be at least 1, got {self.replication_factor}")
        if not 0 <= self.min_insync_replicas <= self.replication_factor:
            raise ValueError(
                f"IMGSEARCH_MIN_INSYNC_REPLICAS must be 0 (the broker's default) .. the replication factor "
                f"({self.replication_factor}), got {self.min_insync_replicas}"
            )
        if not 0 < self.kafka_heartbeat_interval_s <= self.kafka_session_timeout_s / 3:
            raise ValueError(
                "IMGSEARCH_KAFKA_HEARTBEAT_INTERVAL_S must be > 0 and at most a third of "
                f"IMGSEARCH_KAFKA_SESSION_TIMEOUT_S ({self.kafka_session_timeout_s}), "
                f"got {self.kafka_heartbeat_interval_s}"
            )
        if not 6.0 <= self.kafka_session_timeout_s <= 90.0:
            raise ValueError(
                "IMGSEARCH_KAFKA_SESSION_TIMEOUT_S must be 6 .. 90 s (the broker's default "
                "group.min.session.timeout.ms is 6 s; faust refuses a session longer than its request "
                f"timeout, 90 s), got {self.kafka_session_timeout_s}"
            )
        if self.kafka_rebalance_timeout_s <= 0:
            raise ValueError(f"IMGSEARCH_KAFKA_REBALANCE_TIMEOUT_S must be > 0, got {self.kafka_rebalance_timeout_s}")
        if self.query_concurrency < 1:
            raise ValueError(f"IMGSEARCH_QUERY_CONCURRENCY must be at least 1, got {self.query_concurrency}")
        if self.embed_threads < 0:
            raise ValueError(f"IMGSEARCH_EMBED_THREADS must be 0 (one per core) or more, got {self.embed_threads}")
        if self.index_replicas < 0:
            raise ValueError(f"IMGSEARCH_INDEX_REPLICAS must be at least 0, got {self.index_replicas}")
        if self.affinity_mode not in ("cluster", "continuous"):
            raise ValueError(f"IMGSEARCH_AFFINITY must be cluster or continuous, got {self.affinity_mode!r}")
        if not 0.0 <= self.mmr_lambda <= 1.0:
            raise ValueError(f"IMGSEARCH_MMR_LAMBDA must be in [0, 1], got {self.mmr_lambda}")
        if self.affinity_bandwidth <= 0 or not -1.0 <= self.affinity_merge_sim <= 1.0:
            raise ValueError("IMGSEARCH_AFFINITY_BANDWIDTH must be > 0 and IMGSEARCH_AFFINITY_MERGE_SIM in [-1, 1]")
        return self

    @property
    def topics(self) -> Topics:
        """This run's topic names (``IMGSEARCH_TOPIC_PREFIX``) and event retention."""
        return Topics(self.topic_prefix, self.event_retention_ms)

    @property
    def cache_path(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else Path.home() / ".cache" / "imgsearch"

    def child_env(self, parent: Mapping[str, str] | None = None) -> dict[str, str]:
        """The variables a child process (a worker) needs, on top of ``parent`` (default: this
        process's environment, which a child inherits), to build these same settings with
        ``Settings()``: every field that differs from its default, and every field the parent's
        environment sets (to this value, which may be the default)."""
        parent = process_environment() if parent is None else parent
        out: dict[str, str] = {}
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            names = env_names(name)
            if value == info.get_default(call_default_factory=True) and not any(parent.get(n) for n in names):
                continue
            out[names[0]] = env_text(value)
        return out

    def redacted(self) -> dict[str, object]:
        out: dict[str, object] = {name: getattr(self, name) for name in type(self).model_fields}
        for name in SECRET_FIELDS:
            secret = out[name]
            out[name] = "***" if isinstance(secret, SecretStr) and secret.get_secret_value() else ""
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


def _plain(exc: ValidationError) -> ValueError:
    """A ValueError with our own messages ("IMGSEARCH_PARTITIONS must be an integer, got 'x'"),
    as before pydantic; other errors (an unknown field, a wrong type) keep pydantic's wording."""
    messages = []
    for error in exc.errors():
        if error["type"] == "value_error":
            messages.append(str(error["msg"]).removeprefix("Value error, "))
        else:
            where = ".".join(str(part) for part in error["loc"])
            messages.append(f"{where}: {error['msg']}" if where else str(error["msg"]))
    return ValueError("; ".join(messages))


def env_names(field_name: str) -> list[str]:
    """The environment variable(s) a field is read from, the first being the one it is written to."""
    alias = Settings.model_fields[field_name].validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    return [str(alias or field_name)]


def env_text(value: object) -> str:
    """A field's value as its variable's text (what the field's validator parses back)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, tuple):
        return ",".join(repr(float(v)) for v in value)
    if isinstance(value, dict):
        return ",".join(f"{EventType(k).value}={float(v)!r}" for k, v in value.items())
    return str(value)


def settings_field_names() -> list[str]:
    return list(Settings.model_fields)
