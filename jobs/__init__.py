"""One-shot jobs over the running system: centroid training (``jobs.clusters``), the heads' and the
local ranker's training, the Personalize export, folder ingest, the end-to-end demo. Imported by apps/ only
(docs/architecture.md, "Layers")."""
