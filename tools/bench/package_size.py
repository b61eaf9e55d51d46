"""Deployed size: the function code plus the dependencies layer, unzipped, as the Lambda runtime sees it.

The layer is installed with pip into a temporary directory for the template's target (python3.13 on
arm64) when the package index can serve those wheels, else for this machine's platform (reported).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# What the Lambda Python runtime already provides (and what pip pulls in anyway: aws-xray-sdk needs botocore).
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "six")
RUNTIME_PROVIDED_DISTRIBUTIONS = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python_dateutil", "six")
STRIPPED_DIRECTORIES = frozenset({"__pycache__", "tests", "test"})
STRIPPED_SUFFIXES = (".pyi", ".pyc")
SOURCE_ONLY_DIRECTORIES = frozenset({"tests", "test"})  # stripping that keeps the bytecode
SOURCE_ONLY_SUFFIXES = (".pyi",)
TARGET_PLATFORM_ARGS = (
    "--platform",
    "manylinux2014_aarch64",
    "--only-binary=:all:",
    "--python-version",
    "3.13",
    "--implementation",
    "cp",
)


@dataclass(frozen=True)
class PackageSize:
    platform: str  # what the layer was installed for
    bytecode_python: str  # the Python that compiled the layer's bytecode (pip uses the one running it)
    function_bytes: int  # the function's code (no caches)
    layer_as_installed_bytes: int  # everything pip installed, runtime-provided packages included
    layer_bytes: int  # without what the runtime provides
    layer_stripped_bytes: int  # ... and without tests, caches and type stubs
    layer_stripped_keeping_bytecode_bytes: int  # without tests and type stubs, __pycache__ kept
    total_bytes: int  # function + layer, runtime-provided excluded, not stripped
    total_stripped_bytes: int
    total_stripped_zipped_bytes: int
    largest: list[tuple[str, int]]  # top-level entries of the stripped layer, biggest first
    runtime_provided_in_layer: list[str]  # what pip put in the layer although the runtime provides it
    # Compiling the source of the layer modules the handler loads: what each cold start pays without bytecode.
    compile_ms_without_bytecode: float | None = None


def tree_size(root: Path, *, strip: bool = False, exclude_top: Iterable[str] = ()) -> int:
    return sum(path.stat().st_size for path in files(root, strip=strip, exclude_top=exclude_top))


def files(
    root: Path, *, strip: bool = False, exclude_top: Iterable[str] = (), keep_bytecode: bool = False
) -> list[Path]:
    """Regular files under root, minus top-level entries in `exclude_top`, minus stripped ones when asked."""
    excluded = set(exclude_top)
    directories = SOURCE_ONLY_DIRECTORIES if keep_bytecode else STRIPPED_DIRECTORIES
    suffixes = SOURCE_ONLY_SUFFIXES if keep_bytecode else STRIPPED_SUFFIXES
    found = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        parts = path.relative_to(root).parts
        if is_runtime_provided(parts[0], excluded):
            continue
        if strip and (directories.intersection(parts[:-1]) or path.name.endswith(suffixes)):
            continue
        found.append(path)
    return found


def is_runtime_provided(top: str, excluded: set[str]) -> bool:
    """A top-level entry such as `botocore`, `six.py` or `botocore-1.44.8.dist-info` of an excluded package."""
    if not excluded:
        return False
    name = top.removesuffix(".py")
    if name in excluded:
        return True
    if top.endswith(".dist-info"):
        distribution = top.split("-", 1)[0].lower()
        return distribution in RUNTIME_PROVIDED_DISTRIBUTIONS
    return False


def zipped_size(root: Path, paths: list[Path]) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in paths:
            archive.write(path, path.relative_to(root).as_posix())
    return buffer.tell()


def install_layer(requirements: Path, target: Path) -> str:
    """pip install the layer's requirements into target; returns the platform it was installed for."""
    base = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input"]
    base += ["--target", str(target), "-r", str(requirements)]
    attempt = subprocess.run([*base, *TARGET_PLATFORM_ARGS], capture_output=True, text=True, check=False)
    if attempt.returncode == 0:
        return "manylinux2014_aarch64, CPython 3.13 (the template's target)"
    shutil.rmtree(target, ignore_errors=True)
    local = subprocess.run(base, capture_output=True, text=True, check=False)
    if local.returncode != 0:
        raise RuntimeError(f"pip install failed: {(local.stderr or attempt.stderr).strip()[-400:]}")
    return f"this machine's platform, CPython {sys.version_info.major}.{sys.version_info.minor} (target not available)"


def measure(repo_root: Path, compile_ms_by_top: dict[str, float] | None = None) -> PackageSize:
    function_dir = repo_root / "functions"
    function_files = files(function_dir, strip=True)  # the code only: a local __pycache__ is not deployed
    function_bytes = sum(p.stat().st_size for p in function_files)
    with tempfile.TemporaryDirectory(prefix="bench-layer-") as temporary:
        target = Path(temporary) / "python"
        platform = install_layer(repo_root / "layers" / "dependencies" / "requirements.txt", target)
        as_installed = tree_size(target)
        layer = tree_size(target, exclude_top=RUNTIME_PROVIDED)
        stripped_files = files(target, strip=True, exclude_top=RUNTIME_PROVIDED)
        stripped = sum(p.stat().st_size for p in stripped_files)
        keeping_bytecode = sum(
            p.stat().st_size for p in files(target, strip=True, exclude_top=RUNTIME_PROVIDED, keep_bytecode=True)
        )
        in_layer = {entry.name.removesuffix(".py") for entry in target.iterdir()} - set(RUNTIME_PROVIDED)
        compile_ms = sum(ms for top, ms in compile_ms_by_top.items() if top in in_layer) if compile_ms_by_top else None
        pulled_in = sorted(
            entry.name.removesuffix(".py")
            for entry in target.iterdir()
            if not entry.name.endswith(".dist-info") and is_runtime_provided(entry.name, set(RUNTIME_PROVIDED))
        )
        by_top: dict[str, int] = {}
        for path in stripped_files:
            top = path.relative_to(target).parts[0]
            by_top[top] = by_top.get(top, 0) + path.stat().st_size
        zipped = zipped_size(target, stripped_files) + zipped_size(function_dir, function_files)
    return PackageSize(
        platform=platform,
        bytecode_python=f"{sys.version_info.major}.{sys.version_info.minor}",
        function_bytes=function_bytes,
        layer_as_installed_bytes=as_installed,
        layer_bytes=layer,
        layer_stripped_bytes=stripped,
        layer_stripped_keeping_bytecode_bytes=keeping_bytecode,
        total_bytes=function_bytes + layer,
        total_stripped_bytes=function_bytes + stripped,
        total_stripped_zipped_bytes=zipped,
        largest=sorted(by_top.items(), key=lambda item: -item[1])[:6],
        runtime_provided_in_layer=pulled_in,
        compile_ms_without_bytecode=compile_ms,
    )
