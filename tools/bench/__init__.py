"""`make bench`: the tagger against the straightforward baseline, on the local stack."""
