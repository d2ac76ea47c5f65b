"""Issue 16, recovery: a worker's Kafka session timeout (how long a killed worker keeps its partitions
before the group moves them) and heartbeat interval come from Settings and reach the aiokafka consumer
faust builds; impossible pairs are refused with the variable's name."""

from pathlib import Path

import pytest

from imgsearch.config import Settings
from streams.common import make_app


def _worker_consumer(settings: Settings):  # type: ignore[no-untyped-def]
    app = make_app("session-test", settings)
    thread = app.consumer._thread  # faust's AIOKafkaConsumerThread
    return thread._create_worker_consumer(app.transport)


async def test_default_session_is_ten_seconds(tmp_path: Path) -> None:
    s = Settings.from_env({}, data_dir=str(tmp_path), kafka_bootstrap="127.0.0.1:1")
    assert (s.kafka_session_timeout_s, s.kafka_heartbeat_interval_s) == (10.0, 2.0)
    client = _worker_consumer(s)
    assert client._coordinator is None  # not started: nothing connects to 127.0.0.1:1
    assert (client._session_timeout_ms, client._heartbeat_interval_ms) == (10_000, 2_000)


async def test_session_settings_from_the_environment(tmp_path: Path) -> None:
    env = {"IMGSEARCH_KAFKA_SESSION_TIMEOUT_S": "30", "IMGSEARCH_KAFKA_HEARTBEAT_INTERVAL_S": "5"}
    s = Settings.from_env(env, data_dir=str(tmp_path), kafka_bootstrap="127.0.0.1:1")
    client = _worker_consumer(s)
    assert (client._session_timeout_ms, client._heartbeat_interval_ms) == (30_000, 5_000)


@pytest.mark.parametrize(
    "env",
    [
        {"IMGSEARCH_KAFKA_HEARTBEAT_INTERVAL_S": "0"},
        {"IMGSEARCH_KAFKA_SESSION_TIMEOUT_S": "6", "IMGSEARCH_KAFKA_HEARTBEAT_INTERVAL_S": "3"},
        {"IMGSEARCH_KAFKA_SESSION_TIMEOUT_S": "3", "IMGSEARCH_KAFKA_HEARTBEAT_INTERVAL_S": "1"},
        {"IMGSEARCH_KAFKA_SESSION_TIMEOUT_S": "120"},  # faust would refuse it at the first consumer
        {"IMGSEARCH_KAFKA_REBALANCE_TIMEOUT_S": "0"},
    ],
)
def test_impossible_group_timings_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="IMGSEARCH_KAFKA_"):
        Settings.from_env(env)


async def test_fausts_own_variables_do_not_override_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROKER_SESSION_TIMEOUT", "45")
    monkeypatch.setenv("BROKER_REBALANCE_TIMEOUT", "5")
    env = {"IMGSEARCH_KAFKA_REBALANCE_TIMEOUT_S": "20"}
    s = Settings.from_env(env, data_dir=str(tmp_path), kafka_bootstrap="127.0.0.1:1")
    client = _worker_consumer(s)
    assert (client._session_timeout_ms, client._rebalance_timeout_ms) == (10_000, 20_000)


def test_a_session_number_is_checked() -> None:
    with pytest.raises(ValueError, match="IMGSEARCH_KAFKA_SESSION_TIMEOUT_S must be a number"):
        Settings.from_env({"IMGSEARCH_KAFKA_SESSION_TIMEOUT_S": "ten"})
