"""The settings the local stack shares with `template.yaml`, read from its parameter defaults.

Reading them (rather than repeating the numbers) keeps the local stack and the deployed stack from
drifting apart. Each value has a fallback, used (and reported) when the template or the parameter
is missing, so the local stack still runs while the template is being written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfnlint.decode import decode  # type: ignore[import-untyped]

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
UPSTREAM_RULE_RESOURCE = "UpstreamTagRequestRule"

# Parameter name → fallback default. The fallbacks mirror the template the project documents.
FALLBACKS: dict[str, int | str] = {
    "BatchSize": 10,
    "MaximumBatchingWindowInSeconds": 1,
    "MaxReceiveCount": 5,
    "MaxConcurrency": 10,
    "FunctionTimeoutSeconds": 30,
    "UpstreamDetailType": "CompletionTagRequested",
}


@dataclass(frozen=True)
class TemplateDefaults:
    """What the local stack takes from the template, with where each value came from."""

    batch_size: int
    batching_window_seconds: int
    max_receive_count: int
    max_concurrency: int
    function_timeout_seconds: int
    upstream_detail_type: str
    upstream_event_pattern: dict[str, Any]
    # Parameter names (or "EventPattern") that fell back to the built-in value, and why.
    fallbacks: dict[str, str] = field(default_factory=dict)


def load_template_defaults(path: Path = TEMPLATE_PATH) -> TemplateDefaults:
    """Read `path`; every value the template does not provide takes its fallback (see `fallbacks`)."""
    template, problem = read_template(path)
    parameters: dict[str, Any] = dict(template.get("Parameters") or {})
    fallbacks: dict[str, str] = {}
    values: dict[str, int | str] = {}
    for name, fallback in FALLBACKS.items():
        value, reason = _parameter_default(parameters, name, fallback, problem)
        values[name] = value
        if reason:
            fallbacks[name] = reason
    detail_type = str(values["UpstreamDetailType"])
    pattern, reason = _upstream_pattern(template, parameter_defaults(parameters, values), problem)
    if pattern is None:
        pattern = {"detail-type": [detail_type]}
        fallbacks["EventPattern"] = reason
    return TemplateDefaults(
        batch_size=int(values["BatchSize"]),
        batching_window_seconds=int(values["MaximumBatchingWindowInSeconds"]),
        max_receive_count=int(values["MaxReceiveCount"]),
        max_concurrency=int(values["MaxConcurrency"]),
        function_timeout_seconds=int(values["FunctionTimeoutSeconds"]),
        upstream_detail_type=detail_type,
        upstream_event_pattern=pattern,
        fallbacks=fallbacks,
    )


def read_template(path: Path) -> tuple[dict[str, Any], str]:
    """The decoded template (intrinsic tags such as `!Ref` become `{"Ref": ...}`), or {} and why not."""
    if not path.is_file():
        return {}, f"{path.name} not found"
    template, matches = decode(str(path))
    if not isinstance(template, dict):
        first = str(matches[0]) if matches else "unreadable"
        return {}, f"{path.name} could not be read ({first})"
    return _plain(template), ""


def _plain(value: Any) -> Any:
    """cfn-lint's node types (dict_node, str_node) as plain dicts, lists and scalars."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, str):
        return str(value)
    return value


def _parameter_default(
    parameters: dict[str, Any], name: str, fallback: int | str, problem: str
) -> tuple[int | str, str]:
    """(value, "") from the template, or (fallback, reason)."""
    if problem:
        return fallback, problem
    declared = parameters.get(name)
    if not isinstance(declared, dict) or "Default" not in declared:
        return fallback, f"parameter {name} has no Default in the template"
    default = declared["Default"]
    if isinstance(fallback, int):
        try:
            return int(default), ""
        except (TypeError, ValueError):
            return fallback, f"parameter {name} default {default!r} is not a number"
    return str(default), ""


def parameter_defaults(parameters: dict[str, Any], values: dict[str, int | str]) -> dict[str, Any]:
    """Every parameter default in the template, with the values resolved above taking precedence."""
    defaults = {
        name: declared["Default"]
        for name, declared in parameters.items()
        if isinstance(declared, dict) and "Default" in declared
    }
    defaults.update(values)
    return defaults


def _upstream_pattern(
    template: dict[str, Any], defaults: dict[str, Any], problem: str
) -> tuple[dict[str, Any] | None, str]:
    """The upstream rule's EventPattern, resolved with the parameter defaults, or (None, reason)."""
    if problem:
        return None, problem
    resource = (template.get("Resources") or {}).get(UPSTREAM_RULE_RESOURCE)
    if not isinstance(resource, dict):
        return None, f"resource {UPSTREAM_RULE_RESOURCE} not in the template"
    pattern = (resource.get("Properties") or {}).get("EventPattern")
    if isinstance(pattern, str):
        try:
            pattern = json.loads(pattern)
        except ValueError:
            return None, f"{UPSTREAM_RULE_RESOURCE} EventPattern is not JSON"
    if not isinstance(pattern, dict):
        return None, f"{UPSTREAM_RULE_RESOURCE} has no EventPattern"
    try:
        resolved = TemplateResolver(defaults, dict(template.get("Conditions") or {})).resolve(pattern)
    except LookupError as error:
        return None, f"{UPSTREAM_RULE_RESOURCE} EventPattern: {error.args[0]}"
    return resolved, ""


class TemplateResolver:
    """Evaluates the intrinsics an event pattern may use, with every parameter at its default:
    `Ref` to a parameter, `Fn::If` and the condition functions. Anything else is a LookupError."""

    def __init__(self, parameters: dict[str, Any], conditions: dict[str, Any]) -> None:
        self._parameters = parameters
        self._conditions = conditions

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            key, argument = next(iter(value.items()))
            if key == "Ref":
                if argument not in self._parameters:
                    raise LookupError(f"cannot resolve Ref {argument} locally")
                return self._parameters[argument]
            if key == "Fn::If":
                condition, when_true, when_false = argument
                return self.resolve(when_true if self.condition(condition) else when_false)
            if key.startswith("Fn::"):
                raise LookupError(f"cannot resolve {key} locally")
        return {key: self.resolve(item) for key, item in value.items()}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            raise LookupError(f"condition {name} is not declared")
        return self._truth(self._conditions[name])

    def _truth(self, expression: Any) -> bool:
        if not isinstance(expression, dict) or len(expression) != 1:
            raise LookupError(f"cannot evaluate condition {expression!r} locally")
        key, argument = next(iter(expression.items()))
        if key == "Condition":
            return self.condition(argument)
        if key == "Fn::Equals":
            left, right = (self.resolve(item) for item in argument)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self._truth(argument[0])
        if key == "Fn::And":
            return all(self._truth(item) for item in argument)
        if key == "Fn::Or":
            return any(self._truth(item) for item in argument)
        raise LookupError(f"cannot evaluate {key} locally")
