"""Input files as numbered lines of text, read as bytes so that one bad byte costs one line, not the run.

The encoding is UTF-8 unless the file starts with a byte order mark (UTF-8's, which editors on Windows
write, or UTF-16's / UTF-32's, which PowerShell's `>` writes) or `--encoding` names another. A line that
does not decode is named and skipped; every other line is read. UTF-16 and UTF-32 cannot be split into
lines byte-wise, so they are decoded as a stream: there, a byte sequence that does not decode ends the
input at that line, which is named.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

DEFAULT_ENCODING = "utf-8"
# Longest first: UTF-32 LE's mark starts with UTF-16 LE's.
_BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_WIDE = frozenset({"utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"})


@dataclass(frozen=True)
class TextLine:
    """One line of an input file: its 1-based number and its text, or why it could not be read."""

    number: int
    text: str
    problem: str | None = None


def check_encoding(name: str) -> str:
    """The codec's canonical name; raises ValueError for a name Python does not know."""
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise ValueError(f"--encoding: unknown encoding {name!r}") from None


def text_lines(stream: IO[bytes], encoding: str | None = None) -> Iterator[TextLine]:
    """Every line of `stream` (line ends removed), numbered as an editor would; a byte order mark wins."""
    head = stream.read(4)
    chosen = check_encoding(encoding or DEFAULT_ENCODING)
    for mark, marked in _BYTE_ORDER_MARKS:
        if head.startswith(mark):
            head, chosen = head[len(mark) :], marked
            break
    whole = io.BufferedReader(_Prefixed(head, stream))
    if chosen in _WIDE:
        yield from _stream_decoded(whole, chosen)
    else:
        yield from _line_decoded(whole, chosen)


def _line_decoded(whole: IO[bytes], encoding: str) -> Iterator[TextLine]:
    for number, raw in enumerate(whole, start=1):
        try:
            yield TextLine(number, raw.decode(encoding).rstrip("\r\n"))
        except UnicodeDecodeError as error:
            yield TextLine(number, "", _not_text(encoding, raw[error.start], error.start + 1))


def _stream_decoded(whole: IO[bytes], encoding: str) -> Iterator[TextLine]:
    reader = io.TextIOWrapper(whole, encoding=encoding, errors="strict", newline=None)
    number = 0
    try:
        for number, text in enumerate(reader, start=1):
            yield TextLine(number, text.rstrip("\n"))
    except UnicodeDecodeError as error:
        yield TextLine(
            number + 1,
            "",
            f"body: not valid {encoding} text (near byte 0x{error.object[error.start]:02x}); "
            "the input was not read past this line",
        )


def _not_text(encoding: str, byte: int, column: int) -> str:
    hint = "; give --encoding if the file is not UTF-8" if encoding == DEFAULT_ENCODING else ""
    return f"body: not valid {encoding} text (byte 0x{byte:02x} at byte {column} of the line){hint}"


class _Prefixed(io.RawIOBase):
    """The bytes already read from a stream, then the rest of it, as one raw stream."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._head:
            count = min(len(buffer), len(self._head))
            buffer[:count] = self._head[:count]
            self._head = self._head[count:]
            return count
        # read1 where there is one: a pipe's lines are handed on as they come, not once a buffer is full.
        data = getattr(self._rest, "read1", self._rest.read)(len(buffer))
        buffer[: len(data)] = data
        return len(data)
