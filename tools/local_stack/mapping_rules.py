"""The example mapping rules (examples/upstream-mapping.yaml), read so the local stack creates them too.

Each `AWS::Events::Rule` of the example becomes a rule on the local bus with the same event pattern
and input transformer, its parameters at their defaults, targeting the local queue, so an upstream
event of a foreign shape becomes a tag request through exactly what users deploy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_stack.template_defaults import REPO_ROOT, TemplateResolver, parameter_defaults, read_template

EXAMPLE_MAPPING_PATH = REPO_ROOT / "examples" / "upstream-mapping.yaml"


class MappingRuleError(ValueError):
    """The example template has a rule the local stack cannot create. The message names it."""


@dataclass(frozen=True)
class MappingRule:
    """One mapping rule: its logical id (the local rule's name), pattern and input transformer."""

    logical_id: str
    event_pattern: dict[str, Any]
    input_paths: dict[str, str]
    input_template: str


def load_mapping_rules(path: Path = EXAMPLE_MAPPING_PATH) -> tuple[MappingRule, ...]:
    """Every rule of the template, resolved with its parameter defaults."""
    template, problem = read_template(path)
    if problem:
        raise MappingRuleError(problem)
    resolver = TemplateResolver(parameter_defaults(dict(template.get("Parameters") or {}), {}), {})
    rules = []
    for logical_id, resource in (template.get("Resources") or {}).items():
        if resource.get("Type") != "AWS::Events::Rule":
            continue
        properties = resource.get("Properties") or {}
        targets = properties.get("Targets") or []
        transformer = targets[0].get("InputTransformer") if len(targets) == 1 else None
        if not transformer:
            raise MappingRuleError(f"{logical_id}: expected one target with an InputTransformer")
        try:
            pattern = resolver.resolve(properties["EventPattern"])
        except (KeyError, LookupError) as error:
            raise MappingRuleError(f"{logical_id} EventPattern: {error}") from None
        rules.append(
            MappingRule(
                logical_id=logical_id,
                event_pattern=pattern,
                input_paths=dict(transformer["InputPathsMap"]),
                input_template=str(transformer["InputTemplate"]),
            )
        )
    return tuple(rules)
