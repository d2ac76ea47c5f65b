"""The speed benchmark's configuration: the sizes of every section, in a quick and a full preset,
and the command line that chooses one (``bench/speed.py``)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import REPO


@dataclass
class Config:
    quick: bool = False
    bare_images: int = 475  # images for the in-process embedder baseline (≤ 475)
    ingest_images: int = 950  # images per measured pipeline phase (distinct ids, the icon set repeated)
    warm_images: int = 32
    partitions: int = 2
    k_clusters: int = 16
    target_docs: int = 10_000  # pipeline index padded with synthetic vectors up to this many documents
    fixed_rate: float = 20
    fixed_duration_s: float = 25
    sweep_rates: list[float] = field(default_factory=lambda: [10, 20, 30, 40, 50, 60, 80, 100, 130, 160, 200])
    sweep_duration_s: float = 8
    fresh_trials: int = 20
    recall_queries: int = 100
    scale_sizes: list[int] = field(default_factory=lambda: [1000, 10_000, 100_000])
    scale_latency_queries: int = 200
    scale_recall_queries: int = 50
    search_timeout_s: float = 5.0
    slo_p50_ms: float = 30.0
    slo_p99_ms: float = 100.0
    dataset: Path | None = None  # the image set (labels.json + images); None: the icons-v1 set

    @classmethod
    def full(cls, dataset: Path | None = None) -> Config:
        return cls(dataset=dataset)

    @classmethod
    def small(cls, dataset: Path | None = None) -> Config:
        """The quick run: a small version of every section (the smoke test)."""
        return cls(
            quick=True,
            bare_images=32,
            ingest_images=32,
            warm_images=8,
            partitions=2,
            k_clusters=8,
            target_docs=1000,
            fixed_rate=20,
            fixed_duration_s=3,
            sweep_rates=[20, 40],
            sweep_duration_s=2,
            fresh_trials=3,
            recall_queries=20,
            scale_sizes=[500, 2000],
            scale_latency_queries=30,
            scale_recall_queries=10,
            dataset=dataset,
        )


@dataclass(frozen=True)
class Invocation:
    """What the command line asks for: the configuration and where the report goes."""

    config: Config
    out: Path
    copy_docs_img: bool

    @property
    def plot_prefix(self) -> str:
        return "quick-bench-" if self.config.quick else "bench-"


def parse_args(argv: list[str] | None = None, description: str | None = None) -> Invocation:
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a small version of every section (seconds to a minute)")
    ap.add_argument("--out", type=Path, default=None, help="JSON path (default bench-results/speed[-quick].json)")
    ap.add_argument(
        "--dataset", type=Path, default=None, help="an image set with labels.json (default: the icons-v1 set)"
    )
    ap.add_argument("--no-docs-img", action="store_true", help="do not copy the plots to docs/img/")
    args = ap.parse_args(argv)
    cfg = Config.small(args.dataset) if args.quick else Config.full(args.dataset)
    out = args.out or REPO / "bench-results" / ("speed-quick.json" if args.quick else "speed.json")
    return Invocation(cfg, out, copy_docs_img=not args.quick and not args.no_docs_img)
