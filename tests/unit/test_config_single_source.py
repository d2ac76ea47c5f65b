"""Issue 13 item 1: one configuration. ``os.environ`` is read in imgsearch/config.py only (a run is
configured by passing a ``Settings``; a child process gets ``settings.child_env()``), and the
``Settings`` object reads, round-trips and refuses what it always did."""

from __future__ import annotations

import re

import pytest

from imgsearch.config import REPO_ROOT, Settings, env_names, parse_event_weights
from schemas.events import EventType

# first-party code: the product's packages, the bench, the tests
FIRST_PARTY = ("imgsearch", "streams", "producers", "consumers", "schemas", "bench", "tests")
ENVIRONMENT = re.compile(r"os\.environ|os\.getenv|\bgetenv\(|environ\[")
# every other file that may name the process environment, and why
ALLOWED = {
    "imgsearch/config.py": "the one place: Settings and process_environment()",
    "tests/docker/conftest.py": "DOCKER_TEST_* port overrides of the docker tests (they run on CI's Docker daemon)",
    "tests/docker/test_compose.py": "docker compose's own environment: the test process's, without the engines'",
    "tests/docker/test_testcontainers.py": "the testcontainers run's environment: the test process's, no engines'",
    "tests/unit/test_config_single_source.py": "this test (its pattern)",
}


def offending_lines() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for top in FIRST_PARTY:
        for path in sorted((REPO_ROOT / top).rglob("*.py")):
            rel = path.relative_to(REPO_ROOT).as_posix()
            if rel in ALLOWED:
                continue
            hits = [
                f"{n}: {line.strip()}"
                for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                if ENVIRONMENT.search(line)
            ]
            if hits:
                found[rel] = hits
    return found


def test_the_environment_is_read_in_the_config_module_only() -> None:
    found = offending_lines()
    assert not found, (
        "read settings through imgsearch.config (Settings, process_environment()) and pass them: "
        + "; ".join(f"{path}: {hits}" for path, hits in found.items())
    )


def test_every_allowed_file_exists() -> None:
    assert not [rel for rel in ALLOWED if not (REPO_ROOT / rel).is_file()]


def test_from_env_reads_only_its_mapping_and_empty_means_default() -> None:
    s = Settings.from_env({"IMGSEARCH_PARTITIONS": "7", "IMGSEARCH_INDEX": "", "AWS_DEFAULT_REGION": "eu-west-1"})
    assert (s.partitions, s.index_name, s.aws_region) == (7, "imgsearch-images", "eu-west-1")
    assert Settings.from_env({}) == Settings.from_env({}, partitions=4)
    assert Settings.from_env({}, partitions=2).partitions == 2  # fields by name on top
    assert Settings(partitions=3).partitions == 3 and Settings(IMGSEARCH_PARTITIONS=5).partitions == 5


def test_child_env_reproduces_the_settings() -> None:
    s = Settings.from_env(
        {"OPENSEARCH_PASSWORD": "pw", "IMGSEARCH_EVENT_WEIGHTS": "view=2", "IMGSEARCH_CLIP_MEAN": "1,2,3"},
        topic_prefix="t1",
        use_testcontainers=True,
        unknown_image_wait_s=2.5,
    )
    child = s.child_env({})
    assert child["IMGSEARCH_TOPIC_PREFIX"] == "t1" and child["IMGSEARCH_USE_TESTCONTAINERS"] == "1"
    assert "IMGSEARCH_PARTITIONS" not in child  # a default the parent's environment does not change
    assert Settings.from_env(child) == s
    # a parent environment that says otherwise is overridden, even back to a default
    parent = {"IMGSEARCH_PARTITIONS": "9", "IMGSEARCH_TOPIC_PREFIX": "other"}
    assert Settings.from_env({**parent, **s.child_env(parent)}) == s
    assert s.topics.interactions().name == "t1.interactions"


def test_typed_values_and_the_old_messages() -> None:
    assert Settings.from_env({"IMGSEARCH_ALLOW_UNTESTED_FAUST": "true"}).allow_untested_faust is True
    assert Settings.from_env({"IMGSEARCH_ALLOW_UNTESTED_FAUST": "0"}).allow_untested_faust is False
    weights = Settings.from_env({"IMGSEARCH_EVENT_WEIGHTS": "favorite=4, hide=-2"}).event_weights
    assert weights == {**parse_event_weights(""), EventType.FAVORITE: 4.0, EventType.HIDE: -2.0}
    for env, message in [
        ({"IMGSEARCH_PARTITIONS": "four"}, "IMGSEARCH_PARTITIONS must be an integer, got 'four'"),
        ({"IMGSEARCH_MMR_LAMBDA": "x"}, "IMGSEARCH_MMR_LAMBDA must be a number, got 'x'"),
        ({"IMGSEARCH_EVENT_RETENTION_MS": "1d"}, "IMGSEARCH_EVENT_RETENTION_MS must be an integer (ms), got '1d'"),
        (
            {"IMGSEARCH_USE_TESTCONTAINERS": "maybe"},
            "IMGSEARCH_USE_TESTCONTAINERS must be 1/0 (true/false), got 'maybe'",
        ),
        ({"IMGSEARCH_CLIP_STD": "1,2"}, "IMGSEARCH_CLIP_STD must be three comma-separated numbers, got '1,2'"),
        ({"IMGSEARCH_EVENT_WEIGHTS": "zap=1"}, "IMGSEARCH_EVENT_WEIGHTS: bad entry 'zap=1'"),
        ({"IMGSEARCH_AFFINITY": "x"}, "IMGSEARCH_AFFINITY must be cluster or continuous, got 'x'"),
    ]:
        with pytest.raises(ValueError) as caught:
            Settings.from_env(env)
        assert str(caught.value) == message
    with pytest.raises(ValueError, match="no_such_field"):
        Settings(no_such_field=1)
    with pytest.raises(ValueError, match="IMGSEARCH_MMR_LAMBDA must be in"):
        Settings.from_env({}).replace(mmr_lambda=2.0)


def test_every_field_has_one_variable() -> None:
    names = [env_names(field)[0] for field in Settings.model_fields]
    assert len(names) == len(set(names))
    assert env_names("aws_region") == ["AWS_REGION", "AWS_DEFAULT_REGION"]
