"""The worker roles: ONE registry, read by ``imgsearch worker ROLE`` (apps/cli.py) and by the process
runner (consumers/runner.py). A new role is a stream (``streams/<role>.py``), an entry point
(``consumers/<role>_worker.py`` with a ``main()``) and one line here."""

from __future__ import annotations

import importlib
from collections.abc import Callable

# role name -> the module of its entry point (``python -m <module>`` starts one worker process)
ROLES: dict[str, str] = {
    "embedder": "consumers.embedding_worker",
    "interactions": "consumers.interaction_worker",
    "query": "consumers.query_worker",
}


def worker_main(role: str) -> Callable[[], None]:
    """The ``main()`` of a role's entry point (imported only when asked: each imports faust and its stream)."""
    main: Callable[[], None] = importlib.import_module(ROLES[role]).main
    return main
