"""The HTTP gateway and the web page: ``python -m apps.gateway`` (see :mod:`apps.gateway.app`)."""

from apps.gateway.app import Gateway, create_app, main

__all__ = ["Gateway", "create_app", "main"]
