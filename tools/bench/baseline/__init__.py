"""The baseline of `make bench`: the straightforward tagger a user would otherwise write."""
