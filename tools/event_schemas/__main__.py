"""`python -m event_schemas [--check]`: write schemas/ and the template's schema registry from the models."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from event_schemas.catalog import SCHEMAS, SCHEMAS_DIR, TEMPLATE_PATH, EventSchema
from event_schemas.rendering import file_text, with_template_content


def sync(schemas_dir: Path, template_path: Path, *, write: bool, schemas: Sequence[EventSchema] = SCHEMAS) -> list[str]:
    """The files that differ from what the models give (relative names); rewritten when `write`.

    Each schema's resource must already be in the template (raises LookupError otherwise): this writes its
    `Content`, never the resource itself.
    """
    template = template_path.read_text(encoding="utf-8")
    updated = template
    drifted: list[str] = []
    for schema in schemas:
        document = schema.document()
        text = file_text(document)
        path = schemas_dir / schema.file_name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            drifted.append(f"{schemas_dir.name}/{schema.file_name}")
            if write:
                schemas_dir.mkdir(exist_ok=True)
                path.write_text(text, encoding="utf-8")
        updated = with_template_content(updated, schema.resource, document)
    if updated != template:
        drifted.append(template_path.name)
        if write:
            template_path.write_text(updated, encoding="utf-8")
    return drifted


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m event_schemas", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report drift (exit 1), write nothing")
    arguments = parser.parse_args(argv)
    drifted = sync(SCHEMAS_DIR, TEMPLATE_PATH, write=not arguments.check)
    if not drifted:
        print("event schemas: up to date")
        return 0
    verb = "out of date (run `make schemas`)" if arguments.check else "written"
    print(f"event schemas: {verb}: {', '.join(drifted)}")
    return 1 if arguments.check else 0


if __name__ == "__main__":
    sys.exit(main())
