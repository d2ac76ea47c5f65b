"""How every client connects: Kafka (PLAINTEXT, SSL, SASL over either) and OpenSearch (plain,
basic auth, TLS, or AWS SigV4 for Amazon OpenSearch Service), all by configuration.

Environment (none of these has a secret default; secrets are never logged):

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
from collections.abc import Mapping
from typing import Any

from imgsearch.config import process_environment

KAFKA_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class ConfigError(ValueError):
    """A connection setting that cannot work; the message names the variable."""


def secret(env: Mapping[str, str], name: str) -> str:
    """A secret from ``NAME`` or from the file named by ``NAME_FILE`` (mounted secrets; the value then
    never appears in the environment of the process or in ``settings`` listings)."""
    if env.get(name):
        return env[name]
    path = env.get(f"{name}_FILE")
    if not path:
        return ""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError as exc:
        raise ConfigError(f"{name}_FILE={path}: cannot read it ({exc.strerror})") from None


def _ssl_context(env: Mapping[str, str]) -> ssl.SSLContext:
    from aiokafka.helpers import create_ssl_context

    return create_ssl_context(
        cafile=env.get("KAFKA_SSL_CAFILE") or None,
        certfile=env.get("KAFKA_SSL_CERTFILE") or None,
        keyfile=env.get("KAFKA_SSL_KEYFILE") or None,
    )


def kafka_security(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments for every aiokafka client (producer, consumer, admin), from ``env``
    (default: this process's environment)."""
    env = process_environment() if env is None else env
    protocol = env.get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").upper()
    if protocol not in KAFKA_PROTOCOLS:
        raise ConfigError(f"KAFKA_SECURITY_PROTOCOL must be one of {', '.join(KAFKA_PROTOCOLS)}, got {protocol!r}")
    kw: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        kw["ssl_context"] = _ssl_context(env)
    if protocol.startswith("SASL"):
        mechanism = env.get("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512").upper()
        if mechanism not in SASL_MECHANISMS:
            raise ConfigError(f"KAFKA_SASL_MECHANISM must be one of {', '.join(SASL_MECHANISMS)}, got {mechanism!r}")
        user, password = env.get("KAFKA_SASL_USERNAME", ""), secret(env, "KAFKA_SASL_PASSWORD")
        if not user or not password:
            raise ConfigError(f"{protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD (or _FILE)")
        kw.update(sasl_mechanism=mechanism, sasl_plain_username=user, sasl_plain_password=password)
    return kw


def faust_credentials(env: Mapping[str, str] | None = None) -> Any:
    """The same settings as faust's ``broker_credentials`` (None for PLAINTEXT)."""
    import faust

    kw = kafka_security(env)
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


def opensearch_kwargs(url: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments for ``AsyncOpenSearch`` (without hosts/timeouts), from ``env`` (default:
    this process's environment)."""
    env = process_environment() if env is None else env
    mode = env.get("OPENSEARCH_AUTH", "basic" if env.get("OPENSEARCH_USER") else "none").lower()
    kw: dict[str, Any] = {}
    if url.startswith("https://"):
        kw["use_ssl"] = True
        kw["verify_certs"] = env.get("OPENSEARCH_VERIFY_CERTS", "true").lower() not in ("0", "false", "no")
        if env.get("OPENSEARCH_CA_CERTS"):
            kw["ca_certs"] = env["OPENSEARCH_CA_CERTS"]
    if mode == "none":
        return kw
    if mode == "basic":
        user, password = env.get("OPENSEARCH_USER", ""), secret(env, "OPENSEARCH_PASSWORD")
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
        region = env.get("OPENSEARCH_AWS_REGION") or session.region_name
        if not region:
            raise ConfigError("OPENSEARCH_AUTH=sigv4 needs OPENSEARCH_AWS_REGION (or an AWS default region)")
        service = env.get("OPENSEARCH_AWS_SERVICE", "es")
        kw.update(http_auth=AWSV4SignerAsyncAuth(credentials, region, service), connection_class=AsyncHttpConnection)
        return kw
    raise ConfigError(f"OPENSEARCH_AUTH must be none, basic or sigv4, got {mode!r}")
