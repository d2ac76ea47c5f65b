"""Runnable worker entry points, one per role; each role is its own consumer group, so ops scale
each on its own: ``python -m consumers.embedding_worker`` (or ``imgsearch worker embedder``)."""
