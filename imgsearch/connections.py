"""How every client connects: Kafka (PLAINTEXT, SSL, SASL over either) and OpenSearch (plain,
basic auth, TLS, or AWS SigV4 for Amazon OpenSearch Service), all from the run's ``Settings``
(passed in; this module reads no environment). Their variables (none has a secret default; secrets
are never logged):

- ``KAFKA_SECURITY_PROTOCOL``: PLAINTEXT (default), SSL, SASL_PLAINTEXT, SASL_SSL
- ``KAFKA_SSL_CAFILE``, ``KAFKA_SSL_CERTFILE``, ``KAFKA_SSL_KEYFILE`` (TLS and mutual TLS)
- ``KAFKA_SASL_MECHANISM`` (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; default SCRAM-SHA-512),
  ``KAFKA_SASL_USERNAME``, ``KAFKA_SASL_PASSWORD`` (or ``KAFKA_SASL_PASSWORD_FILE``)
- ``OPENSEARCH_AUTH``: none (default), basic (``OPENSEARCH_USER`` / ``OPENSEARCH_PASSWORD`` or
  ``OPENSEARCH_PASSWORD_FILE``), sigv4 (AWS credentials from the standard chain;
  ``OPENSEARCH_AWS_REGION``, ``OPENSEARCH_AWS_SERVICE`` ``es`` for managed domains or ``aoss`` for
  serverless)
- ``OPENSEARCH_CA_CERTS`` (a CA bundle for https URLs), ``OPENSEARCH_VERIFY_CERTS`` (default true)
"""

from __future__ import annotations

import ssl
from typing import Any

from pydantic import SecretStr

from imgsearch.config import Settings

KAFKA_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class ConfigError(ValueError):
    """A connection setting that cannot work; the message names the variable."""


def secret(value: SecretStr, file: str, name: str) -> str:
    """A secret from its setting ``NAME`` or from the file ``NAME_FILE`` names (mounted secrets: the
    value then never appears in the environment of the process or in ``settings`` listings); the
    file is read when a client is made, so a rotated secret is picked up by the next client."""
    if value.get_secret_value():
        return value.get_secret_value()
    if not file:
        return ""
    try:
        with open(file, encoding="utf-8") as f:
            return f.read().strip()
    except OSError as exc:
        raise ConfigError(f"{name}_FILE={file}: cannot read it ({exc.strerror})") from None


def _ssl_context(settings: Settings) -> ssl.SSLContext:
    from aiokafka.helpers import create_ssl_context

    return create_ssl_context(
        cafile=settings.kafka_ssl_cafile or None,
        certfile=settings.kafka_ssl_certfile or None,
        keyfile=settings.kafka_ssl_keyfile or None,
    )


def kafka_security(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for every aiokafka client (producer, consumer, admin)."""
    protocol = settings.kafka_security_protocol.upper()
    if protocol not in KAFKA_PROTOCOLS:
        raise ConfigError(f"KAFKA_SECURITY_PROTOCOL must be one of {', '.join(KAFKA_PROTOCOLS)}, got {protocol!r}")
    kw: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        kw["ssl_context"] = _ssl_context(settings)
    if protocol.startswith("SASL"):
        mechanism = settings.kafka_sasl_mechanism.upper()
        if mechanism not in SASL_MECHANISMS:
            raise ConfigError(f"KAFKA_SASL_MECHANISM must be one of {', '.join(SASL_MECHANISMS)}, got {mechanism!r}")
        user = settings.kafka_sasl_username
        password = secret(settings.kafka_sasl_password, settings.kafka_sasl_password_file, "KAFKA_SASL_PASSWORD")
        if not user or not password:
            raise ConfigError(f"{protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD (or _FILE)")
        kw.update(sasl_mechanism=mechanism, sasl_plain_username=user, sasl_plain_password=password)
    return kw


def faust_credentials(settings: Settings) -> Any:
    """The same settings as faust's ``broker_credentials`` (None for PLAINTEXT)."""
    import faust

    kw = kafka_security(settings)
    protocol = kw["security_protocol"]
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(kw["ssl_context"])
    return faust.SASLCredentials(
        username=kw["sasl_plain_username"],
        password=kw["sasl_plain_password"],
        mechanism=kw["sasl_mechanism"],
        ssl_context=kw.get("ssl_context"),
    )


def opensearch_kwargs(settings: Settings, url: str | None = None) -> dict[str, Any]:
    """Keyword arguments for ``AsyncOpenSearch`` (without hosts/timeouts) for ``url`` (default: the
    settings' ``opensearch_url``)."""
    url = settings.opensearch_url if url is None else url
    mode = (settings.opensearch_auth or ("basic" if settings.opensearch_user else "none")).lower()
    kw: dict[str, Any] = {}
    if url.startswith("https://"):
        kw["use_ssl"] = True
        kw["verify_certs"] = settings.opensearch_verify_certs
        if settings.opensearch_ca_certs:
            kw["ca_certs"] = settings.opensearch_ca_certs
    if mode == "none":
        return kw
    if mode == "basic":
        user = settings.opensearch_user
        password = secret(settings.opensearch_password, settings.opensearch_password_file, "OPENSEARCH_PASSWORD")
        if not user or not password:
            raise ConfigError("OPENSEARCH_AUTH=basic needs OPENSEARCH_USER and OPENSEARCH_PASSWORD (or _FILE)")
        kw["http_auth"] = (user, password)
        return kw
    if mode == "sigv4":
        import boto3
        from opensearchpy import AsyncHttpConnection, AWSV4SignerAsyncAuth

        if not url.startswith("https://"):
            raise ConfigError("OPENSEARCH_AUTH=sigv4 needs an https:// OPENSEARCH_URL")
        session = boto3.Session()
        credentials = session.get_credentials()
        if credentials is None:
            raise ConfigError("OPENSEARCH_AUTH=sigv4: no AWS credentials found in the standard chain")
        region = settings.opensearch_aws_region or session.region_name
        if not region:
            raise ConfigError("OPENSEARCH_AUTH=sigv4 needs OPENSEARCH_AWS_REGION (or an AWS default region)")
        service = settings.opensearch_aws_service or "es"
        kw.update(http_auth=AWSV4SignerAsyncAuth(credentials, region, service), connection_class=AsyncHttpConnection)
        return kw
    raise ConfigError(f"OPENSEARCH_AUTH must be none, basic or sigv4, got {mode!r}")
