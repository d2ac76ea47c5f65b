"""The HTTP gateway and the web page: ``python -m imgsearch.gateway`` (see :mod:`imgsearch.gateway.app`)."""

from imgsearch.gateway.app import Gateway, create_app, main

__all__ = ["Gateway", "create_app", "main"]
