"""samconfig.toml: two deployable environments whose parameter overrides fit the template."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.infrastructure._template import EVENTS_DIR, SAMCONFIG_PATH

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
def test_environment_deploys_with_iam_capability_and_managed_bucket(config: dict[str, Any], environment: str) -> None:
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
    config: dict[str, Any], template: dict[str, Any], environment: str
) -> None:
    values = overrides(config[environment]["deploy"]["parameters"]["parameter_overrides"])
    assert values
    for name, value in values.items():
        assert name in template["Parameters"], name
        check_against_parameter(template["Parameters"][name], value)
    assert values["Environment"] != "local"


def test_prod_differs_from_default(config: dict[str, Any]) -> None:
    default = overrides(config["default"]["deploy"]["parameters"]["parameter_overrides"])
    prod = overrides(config["prod"]["deploy"]["parameters"]["parameter_overrides"])
    assert (
        config["prod"]["global"]["parameters"]["stack_name"] != config["default"]["global"]["parameters"]["stack_name"]
    )
    assert prod["Environment"] == "prod"
    assert int(prod["EventSourceMaximumConcurrency"]) > int(default.get("EventSourceMaximumConcurrency", 5))
    assert config["prod"]["deploy"]["parameters"]["confirm_changeset"] is True


LOCAL_COMMANDS = ("local_invoke", "local_start_lambda")


@pytest.mark.parametrize("command", LOCAL_COMMANDS)
def test_local_invoke_selects_the_local_environment_and_env_file(
    config: dict[str, Any], template: dict[str, Any], command: str
) -> None:
    parameters = config["default"][command]["parameters"]
    values = overrides(parameters["parameter_overrides"])
    assert set(values) == {"Environment", "FunctionTimeoutSeconds"}
    for name, value in values.items():
        check_against_parameter(template["Parameters"][name], value)
    assert values["Environment"] == "local"
    assert parameters["env_vars"] == "events/env.json"


@pytest.mark.parametrize("command", LOCAL_COMMANDS)
def test_local_invokes_get_time_for_emulation(config: dict[str, Any], template: dict[str, Any], command: str) -> None:
    """arm64 under emulation on x86_64 takes about 20 s for a sample batch: the deployed 30 s is too near."""
    local = overrides(config["default"][command]["parameters"]["parameter_overrides"])
    deployed = overrides(config["default"]["deploy"]["parameters"]["parameter_overrides"])
    deployed_timeout = deployed.get(
        "FunctionTimeoutSeconds", template["Parameters"]["FunctionTimeoutSeconds"]["Default"]
    )
    assert int(local["FunctionTimeoutSeconds"]) >= 60
    assert int(local["FunctionTimeoutSeconds"]) > int(deployed_timeout)


@pytest.mark.parametrize("command", LOCAL_COMMANDS)
def test_local_containers_reach_the_host_where_env_json_points_them(config: dict[str, Any], command: str) -> None:
    """Only Docker Desktop resolves host.docker.internal by itself; Linux's Docker Engine needs the mapping."""
    env = json.loads((EVENTS_DIR / "env.json").read_text(encoding="utf-8"))["TaggerFunction"]
    hosts = {urlsplit(env[name]).hostname for name in ("AWS_ENDPOINT_URL", "OPENAI_BASE_URL")}
    assert hosts == {"host.docker.internal"}
    add_host = config["default"][command]["parameters"]["add_host"]
    assert isinstance(add_host, list)  # SAM CLI's --add-host is repeatable: the config gives a list
    assert "host.docker.internal:host-gateway" in add_host


def test_local_sections_are_the_same_for_invoke_and_start_lambda(config: dict[str, Any]) -> None:
    invoke, start_lambda = (config["default"][command]["parameters"] for command in LOCAL_COMMANDS)
    assert invoke == start_lambda
