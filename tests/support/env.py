"""The one place the tests change this process's environment (listed in
tests/unit/test_config_single_source.py): the connection variables (KAFKA_SECURITY_PROTOCOL, SASL
user and password, TLS files, OPENSEARCH_AUTH, ...) are read by imgsearch/connections.py from the
process environment when a client is made, not from ``Settings``; the security tests set them here
for their in-process clients. A run itself is configured by passing ``Settings``."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping


@contextlib.contextmanager
def connection_environment(variables: Mapping[str, str]) -> Iterator[None]:
    """Set ``variables`` (a principal's connection settings, as ``engines.sh env <principal>``
    prints them) for the duration; the previous values come back afterwards."""
    old = {k: os.environ.get(k) for k in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
