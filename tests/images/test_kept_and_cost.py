"""Links kept for their owner only, the oldest forgotten first; what a picture costs."""

from __future__ import annotations

from iaforall.core.types import UserId
from iaforall.engines.images.cost import drawing_estimate, drawn, picture_units
from iaforall.engines.images.kept import KeptPictures

ADA, BOB = UserId("ada"), UserId("bob")


def test_a_kept_picture_is_its_owners_and_the_oldest_go_first() -> None:
    kept = KeptPictures(most=2)
    first = kept.keep(ADA, b"1", "image/png")
    second = kept.keep(ADA, b"2", "image/png")
    assert kept.get(BOB, first) is None
    assert kept.get(ADA, first) is not None
    third = kept.keep(BOB, b"3", "image/webp")
    assert kept.get(ADA, first) is None  # the oldest forgotten
    assert kept.get(ADA, second) is not None and kept.get(BOB, third) is not None
    assert len({first, second, third}) == 3 and len(first) >= 24  # unguessable


def test_a_picture_costs_its_units_in_proportion_to_its_pixels() -> None:
    assert picture_units(500, 512, 512) == 500
    assert picture_units(500, 256, 256) == 125
    assert picture_units(500, 768, 512) == 750
    used = drawn(prompt_chars=40, pictures=2, per_picture=500)
    assert (used.prompt_tokens, used.completion_tokens) == (10, 1000)
    assert drawing_estimate(40, 2, 500) >= 1000
