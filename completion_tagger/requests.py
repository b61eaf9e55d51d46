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

from tagger.models import Mode


@dataclass(frozen=True)
class Line:
    """One input request: its 1-based position in the input and its JSON text."""

    number: int
    text: str


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


def json_lines(stream: IO[str]) -> Iterator[Line]:
    """The non-blank lines of a JSON Lines stream, numbered as an editor would (blank lines count too)."""
    for number, text in enumerate(stream, start=1):
        if text.strip():
            yield Line(number, text)


def id_lines(completion_ids: Iterable[tuple[int, str]], spec: TagSpec) -> Iterator[Line]:
    """One request per (line number, completion id), all asking for the same tags."""
    for number, completion_id in completion_ids:
        yield Line(number, json.dumps(spec.request_for(completion_id)))


def completion_ids(stream: IO[str]) -> Iterator[tuple[int, str]]:
    """A file of completion ids: one per line; blank lines and lines starting with # are skipped."""
    for number, text in enumerate(stream, start=1):
        value = text.strip()
        if value and not value.startswith("#"):
            yield number, value


def object_lines(requests: Iterable[str | Mapping[str, Any] | BaseModel]) -> Iterator[Line]:
    """Requests given to the Python API: JSON text, a mapping, or a model such as `tagger.models.TagRequest`."""
    for number, request in enumerate(requests, start=1):
        if isinstance(request, str):
            yield Line(number, request)
        elif isinstance(request, BaseModel):
            yield Line(number, request.model_dump_json(exclude_none=True))
        else:
            yield Line(number, json.dumps(request))
