"""Real image datasets built from registry packages (see docs/datasets.md).

- :mod:`imgsearch.datasets.debian`: ``apt-get download`` + ``dpkg -x`` into the cache, no system install.
- :mod:`imgsearch.datasets.npm`: ``npm pack NAME@VERSION`` + a safe tar extraction into the cache.
- :mod:`imgsearch.datasets.icons`: the icon-theme "subject x style" set ``icons-v1`` (``build``, ``load_labels``,
  ``subset``, ``contact_sheet``; CLI ``python -m imgsearch.datasets.icons build|sheet|coverage``).
- :mod:`imgsearch.datasets.styles`: ``styles-v2``, icons + emoji + clip-art labelled by style family for
  issue 19 (CLI ``python -m imgsearch.datasets.styles build|sheet|stats``).
- :mod:`imgsearch.datasets.splits`: the train/val/test split by style family and the held-out-subject rule.
"""
