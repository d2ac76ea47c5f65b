"""Real image datasets built from Debian packages (see docs/datasets.md).

- :mod:`imgsearch.datasets.debian`: ``apt-get download`` + ``dpkg -x`` into the cache, no system install.
- :mod:`imgsearch.datasets.icons`: the icon-theme "subject x style" set (``build``, ``load_labels``,
  ``subset``, ``contact_sheet``; CLI ``python -m imgsearch.datasets.icons build|sheet|coverage``).
"""
