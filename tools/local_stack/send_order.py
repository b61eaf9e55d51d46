"""Does each shared completion hold what its requests give when applied in the order they were sent?

The run's shared requests conflict (several per completion, in different batches and containers, one
of them put back and redelivered late). Whatever order they were really applied in, the ordering rule
(README, "Modes"; docs/design.md, "Concurrency and ordering") says the end state is the one
`expected_metadata` computes from the send order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from local_stack import samples
from local_stack.expected_state import expected_metadata
from tagger.models import TagRequest


@dataclass(frozen=True)
class Difference:
    """A completion whose metadata is not what its requests in send order give."""

    completion_id: str
    actual: dict[str, str]
    expected: dict[str, str]


@dataclass(frozen=True)
class Verification:
    matched: tuple[str, ...]
    differences: tuple[Difference, ...]

    @property
    def checked(self) -> int:
        return len(self.matched) + len(self.differences)


def verify_send_order(
    initial: Mapping[str, Mapping[str, str]],
    requests_in_send_order: Sequence[samples.TagRequest],
    read_metadata: Callable[[str], Mapping[str, str]],
) -> Verification:
    """Compare every completion the requests are for (`initial` holds what it was seeded with) with
    `read_metadata(completion_id)`. A body that is not a valid tag request changes nothing."""
    requests: dict[str, list[TagRequest]] = {}
    for request in requests_in_send_order:
        try:
            parsed = TagRequest.model_validate_json(request.body)
        except ValidationError:
            continue
        requests.setdefault(parsed.completion_id, []).append(parsed)
    matched: list[str] = []
    differences: list[Difference] = []
    for completion_id, applied in requests.items():
        expected = expected_metadata(initial.get(completion_id, {}), applied)
        actual = dict(read_metadata(completion_id))
        if actual == expected:
            matched.append(completion_id)
        else:
            differences.append(Difference(completion_id, actual, expected))
    return Verification(tuple(matched), tuple(differences))
