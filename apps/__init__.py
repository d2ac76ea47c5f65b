"""What people and HTTP clients run: the ``imgsearch`` command line (``apps.cli``) and the HTTP
gateway with its web page (``python -m apps.gateway``). The top layer: nothing imports it (docs/architecture.md)."""
