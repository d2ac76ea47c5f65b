"""Speed benchmarks of the whole system on the real Kafka and OpenSearch, on this machine, in one run.

    .venv/bin/python bench/speed.py [--quick] [--out bench-results/speed.json]

1. ingest: images/s through the pipeline (publish → Kafka → embedding worker → OpenSearch, until
   searchable) vs the bare embedder in-process (embed + style describer, batch 16); 1 vs 2 embedders
2. nearest-centroid assignment cost per image vs embedding cost per image
3. search over Kafka request/reply: latency at a fixed open-loop rate (with the reply's timings and
   the Kafka hops) and a rate sweep to the max sustainable rate, on an index padded to 10k vectors
4. freshness: interaction published → first search reply for that user reflecting it
5. k-NN recall@10 (HNSW vs exact script_score) and index size per 10k vectors
6. scale: bulk-ingest cost, k-NN latency and recall at 1k / 10k / 100k synthetic vectors

Writes <out> (JSON), <out>.md (Markdown tables) and PNG plots next to it; the full run also copies
the plots to docs/img/bench-*.png. ``--quick`` runs a small version of every section (the smoke test).
The engines: KAFKA_BOOTSTRAP / OPENSEARCH_URL if set, else the local ones (scripts/engines.sh).
Everything the run creates (topics, consumer groups, indices) has a unique prefix and is deleted
at the end.

The pieces: speed_config (the sizes, the command line), speed_env (the isolated run: settings
passed in process, the workers' environment, clean-up), speed_ingest (1, 2), speed_search (3, 4),
speed_index (padding, 5, 6), speed_report (JSON, Markdown, plots).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import speed_index, speed_ingest, speed_search
from bench.speed_config import Config, parse_args
from bench.speed_env import Run, close_run, open_run
from bench.speed_report import write_report

Stage = Callable[[Run], Awaitable[None]]

STAGES: tuple[Stage, ...] = (
    speed_ingest.ingest,  # 1. bare embedder vs the pipeline with 1 and 2 embedding workers
    speed_ingest.assignment,  # 2. nearest-centroid assignment cost
    speed_index.pad_index,  # the index padded to cfg.target_docs for the search sections
    speed_search.search_and_freshness,  # 3. search over Kafka; 4. freshness
    speed_index.recall,  # 5. k-NN recall@10 and index size
    speed_index.scale,  # 6. synthetic vectors at growing sizes
)


async def run(cfg: Config) -> dict[str, Any]:
    ctx = open_run(cfg)  # the run's own Settings (topic prefix, index, groups); its workers get them as env
    try:
        for stage in STAGES:
            await stage(ctx)
    finally:
        await close_run(ctx)
    return ctx.res


def main(argv: list[str] | None = None) -> int:
    inv = parse_args(argv, description=__doc__)
    res = asyncio.run(run(inv.config))
    md = write_report(res, inv)
    print(md.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
