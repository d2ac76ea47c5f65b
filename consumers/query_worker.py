"""Query worker: user profiles from personalization events; answers search requests."""

import faust

from consumers._run import run
from imgsearch.config import Settings
from imgsearch.embedding.factory import make_embedder


def _build(settings: Settings) -> faust.App:
    from streams import query

    ranker = None
    if settings.ranker == "personalize":
        from imgsearch.ranker.personalize import PersonalizeRanker

        if not settings.personalize_campaign_arn:
            raise ValueError("IMGSEARCH_RANKER=personalize needs IMGSEARCH_PERSONALIZE_CAMPAIGN_ARN")
        ranker = PersonalizeRanker(settings.personalize_campaign_arn, filter_arn=settings.personalize_filter_arn)
    app, _ = query.build(settings, make_embedder(settings), ranker)
    return app


def main() -> None:
    run("query", _build)


if __name__ == "__main__":
    main()
