"""DynamoDB item sizes and units as the developer guide's rules give them (tools/bench/item_size.py)."""

from __future__ import annotations

from typing import Any

import pytest

from bench.item_size import item_size, number_size, read_units, write_units


@pytest.mark.parametrize(
    ("text", "size"), [("7", 2), ("12", 2), ("123", 3), ("1796404678", 6), ("1700000000", 2), ("-0.0500", 2)]
)
def test_a_number_is_one_byte_per_two_significant_digits_plus_one(text: str, size: int) -> None:
    assert number_size(text) == size


def test_an_item_is_its_names_plus_its_values_with_list_and_map_overheads() -> None:
    item: dict[str, Any] = {
        "id": {"S": "completion-tagger-completion#chatcmpl-1"},  # 2 + 39
        "expiration": {"N": "1796404678"},  # 10 + 6
        "held": {"BOOL": True},  # 4 + 1
        "gone": {"NULL": True},  # 4 + 1
        "blob": {"B": b"\x00\xff\x10"},  # 4 + 3
        "keys": {"M": {"verdict": {"S": "approve"}, "n": {"N": "12"}}},  # 4 + 3 + (7 + 7 + 1) + (1 + 2 + 1)
        "hashes": {"L": [{"S": "ab"}, {"S": "é"}]},  # 6 + 3 + (2 + 1) + (2 + 1)
        "tags": {"SS": ["a", "bc"]},  # 4 + 3
    }
    assert item_size(item) == 41 + 16 + 5 + 5 + 7 + 26 + 15 + 7
    assert item_size(None) == item_size({}) == 0


def test_a_write_is_billed_by_the_larger_of_before_and_after_per_started_kilobyte() -> None:
    assert write_units(0, 10) == 1  # a new small item
    assert write_units(0, 0) == 1  # a failed conditional write on nothing still costs one
    assert write_units(1024, 100) == 1
    assert write_units(1025, 100) == 2  # shrinking a 1025-byte item
    assert write_units(9498, 9498) == 10
    assert write_units(300, 300, transactional=True) == 2


def test_a_read_is_billed_per_started_four_kilobytes_half_when_eventually_consistent() -> None:
    assert read_units(0, consistent=True) == 1.0  # nothing there still costs the minimum
    assert read_units(4096, consistent=True) == 1.0
    assert read_units(4097, consistent=True) == 2.0
    assert read_units(4097, consistent=False) == 1.0
    assert read_units(100, consistent=True, transactional=True) == 2.0
