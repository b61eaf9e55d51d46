"""DynamoDB item sizes and request units, as DynamoDB bills them (on-demand).

Item size, from DynamoDB's developer guide ("DynamoDB item sizes and formats"): the sum over attributes of
the UTF-8 length of the name plus the value's size — a string its UTF-8 bytes, a number 1 byte per two
significant digits plus 1, a binary its raw bytes, a boolean or null 1 byte, a list or map 3 bytes plus
its elements, each element 1 byte more; a set the sum of its members.

Units: a write costs 1 write request unit per started KB of the larger of the item before and after it
(a failed conditional write too; a delete is sized by the item deleted); a strongly consistent read 1
read request unit per started 4 KB (half for an eventually consistent one), at least one unit even for an
item that is not there. Transactional reads and writes cost twice as much.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096


def number_size(text: str) -> int:
    """Bytes of a DynamoDB number: 1 per two significant digits (leading and trailing zeros trimmed), plus 1."""
    digits = text.lstrip("+-").replace(".", "").split("e")[0].split("E")[0].strip("0")
    return math.ceil(len(digits) / 2) + 1 if digits else 2


def value_size(value: Mapping[str, Any]) -> int:
    """Bytes of one attribute value in DynamoDB's typed JSON (`{"S": ...}`, `{"M": {...}}`, ...)."""
    [(kind, data)] = value.items()
    if kind == "S":
        return len(str(data).encode())
    if kind == "N":
        return number_size(str(data))
    if kind == "B":
        return len(data if isinstance(data, bytes | bytearray) else str(data).encode())
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(member).encode()) for member in data)
    if kind == "NS":
        return sum(number_size(str(member)) for member in data)
    if kind == "BS":
        return sum(len(member) for member in data)
    if kind == "L":
        return 3 + sum(value_size(element) + 1 for element in data)
    if kind == "M":
        return 3 + sum(len(name.encode()) + value_size(element) + 1 for name, element in data.items())
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def item_size(item: Mapping[str, Mapping[str, Any]] | None) -> int:
    """Bytes of a whole item (None: no item)."""
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(before: int, after: int, *, transactional: bool = False) -> int:
    """Write request units of one write that found an item of `before` bytes and left one of `after`."""
    units = max(1, math.ceil(max(before, after) / WRITE_UNIT_BYTES))
    return 2 * units if transactional else units


def read_units(size: int, *, consistent: bool, transactional: bool = False) -> float:
    """Read request units of reading an item of `size` bytes (0: not there, still one unit)."""
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    if transactional:
        return 2.0 * units
    return float(units) if consistent else units / 2
