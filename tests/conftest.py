"""The shared fixtures (tests/support/fixtures.py) for every suite."""

pytest_plugins = ["tests.support.fixtures"]
