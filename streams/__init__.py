"""The faust-streaming apps: topics, tables and agents, one app (consumer group) per role.

- ``streams.embedding``: new image → embedding → nearest centroid → OpenSearch → image indexed
- ``streams.interactions``: interaction → cluster id (global table of image-indexed) → personalization
- ``streams.query``: personalization events → user profile table; search request → reply
"""
