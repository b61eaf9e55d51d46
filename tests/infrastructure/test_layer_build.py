"""The dependency layer as `sam build` makes it (layers/dependencies/Makefile), built for real."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from artifact import pythons

pytestmark = pytest.mark.infrastructure

LAYER_SOURCE = Path(__file__).resolve().parents[2] / "layers" / "dependencies"
MAX_UNZIPPED_BYTES = 15 * 1024 * 1024


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """As `make build` builds it: compiled by the runtime's Python where the machine has it."""
    artifacts = tmp_path_factory.mktemp("layer")
    runtime = pythons.runtime_python()
    subprocess.run(
        ["make", "--no-print-directory", "-C", str(LAYER_SOURCE), "build-DependenciesLayer"],
        env={**os.environ, "ARTIFACTS_DIR": str(artifacts), "PYTHON": sys.executable}
        | ({"COMPILER": runtime} if runtime else {}),
        check=True,
        timeout=300,
    )
    return artifacts / "python"


def test_layer_has_the_dependencies_for_arm64_python_313(layer: Path) -> None:
    for package in ("aws_lambda_powertools", "httpx", "pydantic", "pydantic_core", "aws_xray_sdk"):
        assert (layer / package).is_dir(), package
    [core] = list((layer / "pydantic_core").glob("_pydantic_core*.so"))
    assert "cpython-313-aarch64-linux-gnu" in core.name


def test_layer_leaves_boto3_and_botocore_to_the_runtime_and_drops_what_only_async_httpx_needs(layer: Path) -> None:
    shipped = {path.name.split("-")[0].lower() for path in layer.iterdir()}
    assert not shipped & {"boto3", "botocore", "s3transfer", "urllib3", "jmespath", "dateutil", "six.py"}
    assert not shipped & {"anyio", "sniffio"}


def test_layer_has_no_tests_stubs_or_caches_and_fits_the_size_target(layer: Path) -> None:
    files = [path for path in layer.rglob("*") if path.is_file()]
    assert not [path for path in files if path.suffix == ".pyi"]
    # Each module once: bytecode instead of its source where the runtime's Python compiled it, else the source.
    assert not [path for path in files if path.suffix == ".pyc" and path.with_suffix(".py").exists()]
    assert bool(pythons.runtime_python()) == any(path.suffix == ".pyc" for path in files)
    assert not [path for path in layer.rglob("__pycache__")]
    assert not (layer / "bin").exists()
    assert not list(layer.glob("*-stubs"))
    assert sum(path.stat().st_size for path in files) < MAX_UNZIPPED_BYTES


@pytest.fixture(scope="module")
def bytecode_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same build, targeting the Python running the tests, which this machine can compile for."""
    artifacts = tmp_path_factory.mktemp("bytecode-layer")
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    subprocess.run(
        ["make", "--no-print-directory", "-C", str(LAYER_SOURCE), "build-DependenciesLayer"],
        env={
            **os.environ,
            "ARTIFACTS_DIR": str(artifacts),
            "PYTHON": sys.executable,
            "COMPILER": sys.executable,
            "TARGET_PYTHON_VERSION": version,
            "TARGET_PLATFORM": f"manylinux2014_{platform.machine()}",
        },
        check=True,
        timeout=300,
    )
    return artifacts / "python"


@pytest.mark.skipif(
    pythons.runtime_python() is not None,
    reason="the runtime's Python is here: tests/integration/tagger/test_built_artifact.py loads the layer it compiles",
)
def test_with_the_target_python_the_layer_ships_bytecode_instead_of_sources(bytecode_layer: Path) -> None:
    assert not list(bytecode_layer.rglob("*.py"))
    assert (bytecode_layer / "pydantic" / "__init__.pyc").is_file()
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import pydantic, httpx, aws_lambda_powertools.logging, aws_lambda_powertools.utilities.batch.base;"
        "from pydantic import BaseModel\n"
        "class M(BaseModel):\n    a: int\n"
        "assert M(a='1').a == 1; print(pydantic.__file__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(bytecode_layer)], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == str(bytecode_layer / "pydantic" / "__init__.pyc")
