"""The `merge` mode's arithmetic: current metadata, plus the requested keys, minus the removed ones."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from tagger.models import MAX_METADATA_KEYS


class MergeTooLarge(ValueError):
    """The merged metadata would exceed OpenAI's key limit; nothing is written."""


def merge_metadata(current: Mapping[str, str], updates: Mapping[str, str], remove: Iterable[str]) -> dict[str, str]:
    """Apply `updates` over `current`, then delete the `remove` keys (absent keys are ignored)."""
    merged = {**current, **updates}
    for key in remove:
        merged.pop(key, None)
    if len(merged) > MAX_METADATA_KEYS:
        added = sorted(merged.keys() - current.keys())
        raise MergeTooLarge(
            f"metadata: the merge would leave {len(merged)} keys on the completion, over the limit of "
            f"{MAX_METADATA_KEYS} (it already has {len(current)}; this request adds {added}); "
            "remove keys or use mode 'replace'"
        )
    return merged
