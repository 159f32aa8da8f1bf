"""Pictures kept in memory for `response_format: url`: a link for its owner only, the oldest
forgotten first once `most` are kept, and all when the server stops (a link is a convenience,
not storage: the picture is saved by whoever asked for it, as with OpenAI's hour-long links)."""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass

from iaforall.core.types import UserId


@dataclass(frozen=True, slots=True)
class Kept:
    owner: UserId
    data: bytes
    media_type: str


class KeptPictures:
    def __init__(self, most: int) -> None:
        self.most = most
        self._kept: OrderedDict[str, Kept] = OrderedDict()

    def keep(self, owner: UserId, data: bytes, media_type: str) -> str:
        """The picture's key (unguessable), for its link."""
        key = secrets.token_urlsafe(18)
        self._kept[key] = Kept(owner, data, media_type)
        while len(self._kept) > self.most:
            self._kept.popitem(last=False)
        return key

    def get(self, owner: UserId, key: str) -> Kept | None:
        """The picture, for its owner only (None for anyone else: as if it did not exist)."""
        found = self._kept.get(key)
        return found if found is not None and found.owner == owner else None
