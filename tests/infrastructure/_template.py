"""Reading template.yaml the way CloudFormation sees it, without AWS.

`load_template` decodes the YAML with cfn-lint's decoder (short-form tags such as `!Ref` become
`{"Ref": ...}`) into plain dicts and lists. `Resolver` evaluates the template's Conditions and the
`Fn::If` / `Ref`-to-parameter parts of a value for one set of parameter values, which is what the
tests need to say "in a prod deployment, the function has no OPENAI_API_KEY".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cfnlint.decode import decode  # type: ignore[import-untyped]

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
EVENTS_DIR = REPO_ROOT / "events"
SAMCONFIG_PATH = REPO_ROOT / "samconfig.toml"

NO_VALUE = object()  # what `{"Ref": "AWS::NoValue"}` resolves to


def plain(value: Any) -> Any:
    """cfn-lint's node types (dict_node, str_node, ...) as plain dicts, lists and scalars."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    template, matches = decode(str(path))
    if matches or not isinstance(template, dict):
        raise AssertionError(f"{path.name} does not decode: {[str(match) for match in matches]}")
    decoded: dict[str, Any] = plain(template)
    return decoded


def parameter_defaults(template: dict[str, Any]) -> dict[str, Any]:
    return {name: spec.get("Default") for name, spec in template["Parameters"].items()}


class Resolver:
    """Conditions and parameter references of `template`, for the given parameter values."""

    def __init__(self, template: dict[str, Any], overrides: dict[str, Any] | None = None) -> None:
        self.template = template
        self.parameters = parameter_defaults(template) | (overrides or {})
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = self._evaluate(self.template["Conditions"][name])
        return self._conditions[name]

    def _evaluate(self, expression: Any) -> bool:
        (function, argument), *rest = expression.items()
        assert not rest, f"one function per condition expression: {expression}"
        if function == "Fn::Equals":
            left, right = (self.resolve(item) for item in argument)
            return str(left) == str(right)
        if function == "Fn::Not":
            return not self._evaluate(argument[0])
        if function == "Fn::And":
            return all(self._evaluate(item) for item in argument)
        if function == "Fn::Or":
            return any(self._evaluate(item) for item in argument)
        if function == "Condition":
            return self.condition(argument)
        raise AssertionError(f"unsupported condition function {function}")

    def resolve(self, value: Any) -> Any:
        """`Fn::If` and `Ref`s to parameters resolved; other intrinsics are returned as they are."""
        if isinstance(value, dict) and len(value) == 1:
            function, argument = next(iter(value.items()))
            if function == "Fn::If":
                name, if_true, if_false = argument
                return self.resolve(if_true if self.condition(name) else if_false)
            if function == "Ref" and argument == "AWS::NoValue":
                return NO_VALUE
            if function == "Ref" and argument in self.parameters:
                return self.parameters[argument]
        if isinstance(value, dict):
            resolved = {key: self.resolve(item) for key, item in value.items()}
            return {key: item for key, item in resolved.items() if item is not NO_VALUE}
        if isinstance(value, list):
            return [item for item in (self.resolve(item) for item in value) if item is not NO_VALUE]
        return value


def refs_to_parameters(value: Any, parameters: set[str]) -> set[str]:
    """Parameters a value mentions through `Ref` or `${Name}` in `Fn::Sub`."""
    found: set[str] = set()
    if isinstance(value, dict):
        for function, argument in value.items():
            if function == "Ref" and argument in parameters:
                found.add(argument)
            elif function == "Fn::Sub":
                text = argument if isinstance(argument, str) else argument[0]
                found |= {name for name in parameters if "${" + name + "}" in text}
                if isinstance(argument, list):
                    found |= refs_to_parameters(argument[1], parameters)
            else:
                found |= refs_to_parameters(argument, parameters)
    elif isinstance(value, list):
        for item in value:
            found |= refs_to_parameters(item, parameters)
    return found


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))
