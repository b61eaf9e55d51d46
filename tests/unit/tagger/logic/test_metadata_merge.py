"""The merge mode's arithmetic."""

import pytest

from tagger.errors import MergeTooLarge
from tagger.logic.metadata_merge import check_key_limit, merge_metadata


def test_updates_apply_over_current_and_keep_the_rest() -> None:
    assert merge_metadata({"a": "1", "b": "2"}, {"b": "3", "c": "4"}, []) == {"a": "1", "b": "3", "c": "4"}


def test_removed_keys_are_deleted_and_absent_ones_ignored() -> None:
    assert merge_metadata({"a": "1", "b": "2"}, {}, ["a", "zzz"]) == {"b": "2"}


def test_result_over_sixteen_keys_is_refused_with_a_clear_message() -> None:
    current = {f"k{i}": "v" for i in range(15)}
    with pytest.raises(MergeTooLarge, match=r"17 keys.*limit of 16.*already has 15.*\['x', 'y'\]"):
        check_key_limit(current, merge_metadata(current, {"x": "1", "y": "2"}, []))


def test_removals_count_before_the_limit_is_checked() -> None:
    current = {f"k{i}": "v" for i in range(16)}
    merged = merge_metadata(current, {"new": "1"}, ["k0"])
    check_key_limit(current, merged)
    assert len(merged) == 16


def test_current_is_not_mutated() -> None:
    current = {"a": "1"}
    merge_metadata(current, {"b": "2"}, ["a"])
    assert current == {"a": "1"}
