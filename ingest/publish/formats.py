"""What a merged feed can be written as, and how many posts it holds unless told: apart from
the writers so that the command line can name them without loading the store or YAML."""

from __future__ import annotations

from enum import StrEnum

DEFAULT_LIMIT = 50
"""Posts in a merged feed unless told otherwise: what a feed reader shows of a feed anyway."""


class FeedFormat(StrEnum):
    ATOM = "atom"
    JSON_FEED = "json-feed"

    @property
    def media_type(self) -> str:
        if self is FeedFormat.ATOM:
            return "application/atom+xml; charset=utf-8"
        return "application/feed+json; charset=utf-8"
