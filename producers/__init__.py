"""What upstream apps and search clients import: async publishers and the search client."""

from producers.publisher import EventPublisher
from producers.search_client import SearchClient, SearchError, SearchTimeout

__all__ = ["EventPublisher", "SearchClient", "SearchError", "SearchTimeout"]
