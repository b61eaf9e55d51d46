from __future__ import annotations

from typing import Any

import pytest

from tests.infrastructure._template import load_template


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="session")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


@pytest.fixture(scope="session")
def function(resources: dict[str, Any]) -> dict[str, Any]:
    resource = resources["TaggerFunction"]
    assert resource["Type"] == "AWS::Serverless::Function"
    return resource["Properties"]


@pytest.fixture(scope="session")
def variables(function: dict[str, Any]) -> dict[str, Any]:
    return function["Environment"]["Variables"]
