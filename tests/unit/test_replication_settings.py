"""Issue 14 item 16: replication comes from the one Settings object -- topics (replication factor,
min.insync.replicas), faust's own topics, the vector index's replicas -- and every faust producer is
idempotent with acks=all (faust itself turns idempotence on only inside transactions)."""

from pathlib import Path

import pytest

from imgsearch.config import Settings
from imgsearch.index.opensearch import OpenSearchIndex, mapping
from imgsearch.kafka.admin import topic_configs
from streams.common import make_app


def test_defaults_are_one_node() -> None:
    s = Settings.from_env(
        {"IMGSEARCH_REPLICATION_FACTOR": "", "IMGSEARCH_MIN_INSYNC_REPLICAS": "", "IMGSEARCH_INDEX_REPLICAS": ""}
    )
    assert (s.replication_factor, s.min_insync_replicas, s.index_replicas) == (1, 0, 0)
    assert "min.insync.replicas" not in topic_configs(s.topics.interactions(), s.min_insync_replicas)


def test_cluster_settings_reach_topics_index_and_faust(tmp_path: Path) -> None:
    env = {"IMGSEARCH_REPLICATION_FACTOR": "3", "IMGSEARCH_MIN_INSYNC_REPLICAS": "2", "IMGSEARCH_INDEX_REPLICAS": "1"}
    s = Settings.from_env(env, data_dir=str(tmp_path), kafka_bootstrap="127.0.0.1:1")
    index = OpenSearchIndex("http://127.0.0.1:1", "x", replicas=s.index_replicas)
    assert (s.replication_factor, s.min_insync_replicas, s.index_replicas) == (3, 2, 1)
    assert topic_configs(s.topics.interactions(), s.min_insync_replicas)["min.insync.replicas"] == "2"
    assert index.replicas == 1
    assert mapping(8, "m", replicas=index.replicas)["settings"]["index"]["number_of_replicas"] == 1
    app = make_app("replication-test", s)
    assert app.conf.topic_replication_factor == 3


@pytest.mark.parametrize(
    "env",
    [
        {"IMGSEARCH_REPLICATION_FACTOR": "0"},
        {"IMGSEARCH_REPLICATION_FACTOR": "2", "IMGSEARCH_MIN_INSYNC_REPLICAS": "3"},
        {"IMGSEARCH_INDEX_REPLICAS": "-1"},
    ],
)
def test_impossible_replication_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="IMGSEARCH_"):
        Settings.from_env(env)


async def test_faust_producers_are_idempotent_with_acks_all(tmp_path: Path) -> None:
    from faust.transport.drivers.aiokafka import Producer

    app = make_app("idempotence-test", Settings(data_dir=str(tmp_path), kafka_bootstrap="127.0.0.1:1"))
    producer = Producer(app.transport)
    extra = producer._settings_extra()
    assert extra["enable_idempotence"] is True and extra["acks"] == "all"
    client = producer._new_producer()
    assert client._txn_manager is not None, "the aiokafka producer is not idempotent"
