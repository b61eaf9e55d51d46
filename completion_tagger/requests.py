"""Where tag requests come from: JSON Lines, a file of completion ids, or objects handed to the Python API.

Every source yields numbered `Line`s of JSON text, so one validation path (`validation.py`) judges them
all and every report can name the line a request came from.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from pydantic import BaseModel

from completion_tagger.input_text import TextLine, text_lines
from tagger.models import Mode


@dataclass(frozen=True)
class Line:
    """One input request: its 1-based position in the input and its JSON text, or why it has none (a line
    that is not text in the input's encoding)."""

    number: int
    text: str
    problem: str | None = None


@dataclass(frozen=True)
class TagSpec:
    """The request built for each id of `--ids` / `--select`: `--tag k=v`, `--remove k`, `--mode`."""

    metadata: Mapping[str, str]
    remove: Sequence[str] = ()
    mode: Mode = "merge"

    def request_for(self, completion_id: str) -> dict[str, Any]:
        request: dict[str, Any] = {"completion_id": completion_id, "metadata": dict(self.metadata)}
        if self.mode != "merge":
            request["mode"] = self.mode
        if self.remove:
            request["remove"] = list(self.remove)
        return request


def json_lines(stream: IO[bytes], encoding: str | None = None) -> Iterator[Line]:
    """The non-blank lines of a JSON Lines stream, numbered as an editor would (blank lines count too).

    A line that is not text in the stream's encoding (see `input_text.py`) comes with its problem."""
    for line in text_lines(stream, encoding):
        if line.problem is not None:
            yield Line(line.number, "", line.problem)
        elif line.text.strip():
            yield Line(line.number, line.text)


def id_lines(completion_ids: Iterable[TextLine], spec: TagSpec) -> Iterator[Line]:
    """One request per completion id (numbered as in its input), all asking for the same tags."""
    for line in completion_ids:
        if line.problem is not None:
            yield Line(line.number, "", line.problem)
        else:
            yield Line(line.number, json.dumps(spec.request_for(line.text)))


def completion_ids(stream: IO[bytes], encoding: str | None = None) -> Iterator[TextLine]:
    """A file of completion ids: one per line; blank lines and lines starting with # are skipped."""
    for line in text_lines(stream, encoding):
        value = line.text.strip()
        if line.problem is not None or (value and not value.startswith("#")):
            yield TextLine(line.number, value, line.problem)


def object_lines(requests: Iterable[str | Mapping[str, Any] | BaseModel]) -> Iterator[Line]:
    """Requests given to the Python API: JSON text, a mapping, or a model such as `tagger.models.TagRequest`."""
    for number, request in enumerate(requests, start=1):
        if isinstance(request, str):
            yield Line(number, request)
        elif isinstance(request, BaseModel):
            yield Line(number, request.model_dump_json(exclude_none=True))
        else:
            try:
                yield Line(number, json.dumps(request))
            except (TypeError, ValueError) as error:  # a date, a set, a float('nan') key...: not JSON
                yield Line(number, "", f"body: not JSON: {error}")
