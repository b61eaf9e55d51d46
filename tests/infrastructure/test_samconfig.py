"""samconfig.toml: two deployable environments whose parameter overrides fit the template."""

from __future__ import annotations

import re
import shlex
import tomllib
from typing import Any

import pytest

from tests.infrastructure._template import SAMCONFIG_PATH

pytestmark = pytest.mark.infrastructure


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    with SAMCONFIG_PATH.open("rb") as handle:
        return tomllib.load(handle)


def overrides(text: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in shlex.split(text))


def check_against_parameter(spec: dict[str, Any], value: str) -> None:
    if "AllowedValues" in spec:
        assert value in {str(allowed) for allowed in spec["AllowedValues"]}
    if spec["Type"] == "Number":
        number = float(value)
        assert float(spec.get("MinValue", number)) <= number <= float(spec.get("MaxValue", number))
    if "AllowedPattern" in spec:
        assert re.fullmatch(spec["AllowedPattern"], value)


def test_config_version(config: dict[str, Any]) -> None:
    assert config["version"] == 0.1


@pytest.mark.parametrize("environment", ["default", "prod"])
def test_environment_deploys_with_iam_capability_and_managed_bucket(config: dict, environment: str) -> None:
    section = config[environment]
    deploy = section["deploy"]["parameters"]
    assert section["global"]["parameters"]["stack_name"]
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["resolve_s3"] is True
    assert isinstance(deploy["confirm_changeset"], bool)
    assert section["build"]["parameters"] == {"cached": True, "parallel": True}
    assert section["validate"]["parameters"]["lint"] is True


@pytest.mark.parametrize("environment", ["default", "prod"])
def test_parameter_overrides_name_template_parameters_with_allowed_values(
    config: dict, template: dict, environment: str
) -> None:
    values = overrides(config[environment]["deploy"]["parameters"]["parameter_overrides"])
    assert values
    for name, value in values.items():
        assert name in template["Parameters"], name
        check_against_parameter(template["Parameters"][name], value)
    assert values["Environment"] != "local"


def test_prod_differs_from_default(config: dict) -> None:
    default = overrides(config["default"]["deploy"]["parameters"]["parameter_overrides"])
    prod = overrides(config["prod"]["deploy"]["parameters"]["parameter_overrides"])
    assert (
        config["prod"]["global"]["parameters"]["stack_name"] != config["default"]["global"]["parameters"]["stack_name"]
    )
    assert prod["Environment"] == "prod"
    assert int(prod["EventSourceMaximumConcurrency"]) > int(default.get("EventSourceMaximumConcurrency", 5))
    assert config["prod"]["deploy"]["parameters"]["confirm_changeset"] is True


def test_local_invoke_selects_the_local_environment_and_env_file(config: dict) -> None:
    for command in ("local_invoke", "local_start_lambda"):
        parameters = config["default"][command]["parameters"]
        assert overrides(parameters["parameter_overrides"]) == {"Environment": "local"}
        assert parameters["env_vars"] == "events/env.json"
