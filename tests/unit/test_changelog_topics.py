"""Workers create their tables' changelog topics before faust starts (consumers/_run.py): the specs
must be exactly the topics faust would create -- same names, partitions as the table, compacted."""

from pathlib import Path

from imgsearch.config import Settings
from imgsearch.kafka.admin import topic_configs
from streams.common import changelog_topics, json_schema, make_app


def test_changelog_specs_are_the_topics_faust_uses(tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path), kafka_bootstrap="127.0.0.1:1", partitions=3)
    app = make_app("query-test", settings)
    app.Table("profiles", schema=json_schema(), partitions=settings.partitions)
    app.GlobalTable("image-clusters", schema=json_schema(), partitions=5)

    specs = {s.name: s for s in changelog_topics(app)}

    prefix = settings.app_id("query-test")
    assert set(specs) == {f"{prefix}-profiles-changelog", f"{prefix}-image-clusters-changelog"}
    for table in app.tables.values():
        assert table.changelog_topic.get_topic_name() in specs
    assert specs[f"{prefix}-profiles-changelog"].partitions == 3
    assert specs[f"{prefix}-image-clusters-changelog"].partitions == 5
    assert all(topic_configs(s)["cleanup.policy"] == "compact" for s in specs.values())


def test_an_app_without_tables_needs_no_changelog(tmp_path: Path) -> None:
    app = make_app("embedder-test", Settings(data_dir=str(tmp_path), kafka_bootstrap="127.0.0.1:1"))
    assert changelog_topics(app) == []
