"""The `merge` mode's arithmetic: current metadata, plus the requested keys, minus the removed ones."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from tagger.errors import MergeTooLarge
from tagger.models import MAX_METADATA_KEYS


def merge_metadata(current: Mapping[str, str], updates: Mapping[str, str], remove: Iterable[str]) -> dict[str, str]:
    """Apply `updates` over `current`, then delete the `remove` keys (absent keys are ignored)."""
    merged = {**current, **updates}
    for key in remove:
        merged.pop(key, None)
    return merged


def check_key_limit(current: Mapping[str, str], result: Mapping[str, str]) -> None:
    """Raise MergeTooLarge when `result` has more keys than a completion may carry."""
    if len(result) > MAX_METADATA_KEYS:
        added = sorted(result.keys() - current.keys())
        raise MergeTooLarge(
            f"metadata: the update would leave {len(result)} keys on the completion, over the limit of "
            f"{MAX_METADATA_KEYS} (it already has {len(current)}; this request adds {added}); "
            "remove keys or use mode 'replace'"
        )
