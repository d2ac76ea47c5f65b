import ssl

import pytest

from imgsearch.config import Settings
from imgsearch.connections import ConfigError, faust_credentials, kafka_security, opensearch_kwargs


def of(env: dict[str, str]) -> Settings:
    """The settings a deployment's variables describe (the connection settings are fields of it)."""
    return Settings.from_env(env)


def test_kafka_plaintext_default():
    assert kafka_security(of({})) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(of({})) is None


def test_kafka_sasl_ssl():
    env = {"KAFKA_SECURITY_PROTOCOL": "sasl_ssl", "KAFKA_SASL_USERNAME": "svc", "KAFKA_SASL_PASSWORD": "s3cret"}
    kw = kafka_security(of(env))
    assert kw["security_protocol"] == "SASL_SSL" and kw["sasl_mechanism"] == "SCRAM-SHA-512"
    assert isinstance(kw["ssl_context"], ssl.SSLContext) and kw["sasl_plain_username"] == "svc"
    creds = faust_credentials(of(env))
    assert creds.username == "svc" and str(creds.mechanism.value) == "SCRAM-SHA-512"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}, "KAFKA_SASL_USERNAME"),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "KAFKA_SASL_MECHANISM": "GSSAPI",
                "KAFKA_SASL_USERNAME": "u",
                "KAFKA_SASL_PASSWORD": "p",
            },
            "KAFKA_SASL_MECHANISM",
        ),
    ],
)
def test_kafka_config_errors(env, message):
    with pytest.raises(ConfigError, match=message):
        kafka_security(of(env))


def test_opensearch_plain_basic_tls():
    assert opensearch_kwargs(of({}), "http://127.0.0.1:9200") == {}
    kw = opensearch_kwargs(
        of({"OPENSEARCH_USER": "admin", "OPENSEARCH_PASSWORD": "pw", "OPENSEARCH_CA_CERTS": "/etc/ca.pem"}),
        "https://search.example:443",
    )
    assert kw == {"use_ssl": True, "verify_certs": True, "ca_certs": "/etc/ca.pem", "http_auth": ("admin", "pw")}
    with pytest.raises(ConfigError, match="OPENSEARCH_PASSWORD"):
        opensearch_kwargs(of({"OPENSEARCH_AUTH": "basic", "OPENSEARCH_USER": "admin"}), "http://x")


def test_opensearch_sigv4(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    from opensearchpy import AsyncHttpConnection, AWSV4SignerAsyncAuth

    sigv4 = of({"OPENSEARCH_AUTH": "sigv4", "OPENSEARCH_AWS_REGION": "eu-west-1"})
    kw = opensearch_kwargs(sigv4, "https://vpc-x.eu-west-1.es.amazonaws.com")
    assert isinstance(kw["http_auth"], AWSV4SignerAsyncAuth) and kw["connection_class"] is AsyncHttpConnection
    assert kw["http_auth"].signer.region == "eu-west-1" and kw["http_auth"].signer.service == "es"
    with pytest.raises(ConfigError, match="https"):
        opensearch_kwargs(sigv4, "http://x")


def test_the_url_defaults_to_the_settings_and_verify_certs_is_a_setting():
    s = of({"OPENSEARCH_URL": "https://search.example:443", "OPENSEARCH_VERIFY_CERTS": "false"})
    assert opensearch_kwargs(s) == {"use_ssl": True, "verify_certs": False}
    with pytest.raises(ValueError, match="OPENSEARCH_VERIFY_CERTS must be 1/0"):
        of({"OPENSEARCH_VERIFY_CERTS": "maybe"})


def test_a_client_without_settings_uses_the_built_in_defaults_not_the_environment(monkeypatch):
    from imgsearch.config import default_settings

    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")  # set for this process, read by Settings() only
    assert Settings().kafka_security_protocol == "SASL_SSL"
    assert kafka_security(default_settings()) == {"security_protocol": "PLAINTEXT"}


def test_no_secret_in_logged_settings():
    s = Settings.from_env({"OPENSEARCH_PASSWORD": "hunter2", "KAFKA_SASL_PASSWORD": "hunter3"})
    assert s.opensearch_password.get_secret_value() == "hunter2"  # a SecretStr: shown only when asked
    for shown in (repr(s.redacted()), repr(s), str(s)):
        assert "hunter2" not in shown and "hunter3" not in shown
    assert s.redacted()["opensearch_password"] == "***"
    assert s.child_env({})["KAFKA_SASL_PASSWORD"] == "hunter3"  # a worker needs it


def test_passwords_from_files(tmp_path):
    (tmp_path / "kafka.pw").write_text("from-a-file\n")
    (tmp_path / "os.pw").write_text("os-secret")
    env = {
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_USERNAME": "svc",
        "KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "kafka.pw"),
    }
    assert kafka_security(of(env))["sasl_plain_password"] == "from-a-file"
    kw = opensearch_kwargs(
        of({"OPENSEARCH_USER": "svc", "OPENSEARCH_PASSWORD_FILE": str(tmp_path / "os.pw")}), "http://x"
    )
    assert kw["http_auth"] == ("svc", "os-secret")
    with pytest.raises(ConfigError, match=r"KAFKA_SASL_PASSWORD_FILE=.*cannot read"):
        kafka_security(of({**env, "KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "missing")}))


def test_opensearch_faults_worth_retrying():
    from opensearchpy.exceptions import AuthenticationException, AuthorizationException, SSLError, TransportError
    from opensearchpy.exceptions import ConnectionError as OSConnectionError

    from imgsearch.index.opensearch import is_transient

    assert is_transient(OSConnectionError("N/A", "connection refused", OSError()))
    assert is_transient(TransportError(503, "unavailable", {})) and is_transient(TransportError(429, "busy", {}))
    # waiting does not fix a certificate, a password or a permission: fail with the reason instead
    assert not is_transient(SSLError("N/A", "certificate verify failed", OSError()))
    assert not is_transient(AuthenticationException(401, "Unauthorized", {}))
    assert not is_transient(AuthorizationException(403, "no permissions", {}))


def test_a_wrapped_tls_handshake_failure_is_not_retried():
    import ssl

    from opensearchpy.exceptions import ConnectionError as OSConnectionError

    from imgsearch.index.opensearch import is_transient

    cause = ssl.SSLCertVerificationError(1, "certificate verify failed: unable to get local issuer certificate")
    assert not is_transient(OSConnectionError("N/A", "Cannot connect to host", cause))
