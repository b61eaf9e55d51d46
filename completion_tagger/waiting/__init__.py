"""`send --wait`: follow a run's result events until every sent line has ended (docs/sending.md, "Waiting for
the results").

`subscription.py` makes the temporary rule and queue that receive the run's events, `completed.py` asks the
idempotency table whether a line without an event was a duplicate, `dead_letters.py` looks in the dead-letter
queue, `follow.py` puts it together and `line_outcomes.py` is what it reports.
"""
