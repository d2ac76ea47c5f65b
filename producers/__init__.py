"""What upstream apps and search clients import: async publishers and the search client."""

from imgsearch.kafka.deadlines import ClientStartTimeout, EventTooLarge, KafkaClientError, PublishTimeout, TopicMissing
from producers.publisher import EventPublisher
from producers.search_client import SearchClient, SearchError, SearchTimeout

__all__ = [
    "ClientStartTimeout",
    "EventPublisher",
    "EventTooLarge",
    "KafkaClientError",
    "PublishTimeout",
    "SearchClient",
    "SearchError",
    "SearchTimeout",
    "TopicMissing",
]
