"""Integration tests: the real Kafka and OpenSearch (started by scripts/engines.sh if needed) and
real pipelines of worker processes, each isolated by its own topic prefix, app prefix (consumer
groups) and index name. The fixtures (``engines``, ``pipeline_factory``, ``pipeline``) are in
tests/support/fixtures.py; the helpers in tests/support/."""
