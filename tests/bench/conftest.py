"""Load bench/ scripts as modules (bench/ is a folder of scripts, not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load_script(name: str):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while decorating
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def common():
    return load_script("common")


@pytest.fixture(scope="session")
def run_all():
    return load_script("run_all")


@pytest.fixture(scope="session")
def scale():
    return load_script("scale")


@pytest.fixture(scope="session")
def variants():
    return load_script("variants")


@pytest.fixture(scope="session")
def collaborative():
    return load_script("collaborative")


@pytest.fixture(scope="session")
def seeds():
    return load_script("seeds")


@pytest.fixture(scope="session")
def large():
    return load_script("large")


@pytest.fixture(scope="session")
def inner_splits():
    return load_script("inner_splits")
