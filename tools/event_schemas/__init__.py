"""JSON Schemas (draft 4) of the product's messages and events, generated from the function's pydantic models.

`python -m event_schemas` (`make schemas`) writes them to `schemas/` and into the template's schema
registry; `python -m event_schemas --check` fails when either has drifted from the models.
"""
