"""The declared dependency ranges are the tested ones (issue 12, item 5).

``make check-ranges`` (.ci/check_ranges.py) installs the lowest version of each core dependency
that pyproject.toml allows; these tests check that it derives those versions correctly, that every
core dependency has a lower bound to test, and that the README states the declared ranges.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _load_check_ranges():
    spec = importlib.util.spec_from_file_location("check_ranges", ROOT / ".ci" / "check_ranges.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_ranges = _load_check_ranges()


def test_lowest_pins_take_each_lower_bound():
    deps = [
        "torch>=2.14.1,<2.15",
        "Timm==1.0.31",
        "numpy >= 1.24.4",
        "opencv_python_headless>=4.9.0.80 ; python_version >= '3.10'",
        "uvicorn[standard]>=0.29",
        "scipy<2,>=1.10",
    ]
    core = ("torch", "timm", "numpy", "opencv-python-headless", "uvicorn", "scipy")
    assert check_ranges.lowest_pins(deps, core) == [
        "torch==2.14.1",
        "Timm==1.0.31",
        "numpy==1.24.4",
        "opencv_python_headless==4.9.0.80",
        "uvicorn==0.29",
        "scipy==1.10",
    ]


@pytest.mark.parametrize(
    ("deps", "message"),
    [
        (["numpy"], r"numpy '' declares no lower bound"),
        (["numpy<3"], r"numpy '<3' declares no lower bound"),
        (["scipy>=1"], r"core dependency 'numpy' is not declared"),
    ],
)
def test_a_core_dependency_without_a_lower_bound_is_an_error(deps, message):
    with pytest.raises(check_ranges.RangeCheckError, match=message):
        check_ranges.lowest_pins(deps, ("numpy",))


def test_every_core_dependency_of_pyproject_has_a_tested_lower_bound():
    pins = check_ranges.lowest_pins(PYPROJECT["dependencies"])
    assert len(pins) == len(check_ranges.CORE)
    versions = dict(pin.split("==") for pin in pins)
    assert versions["numpy"].startswith("1.")  # numpy 1.x is allowed, so it is what is tested
    assert versions["timm"] == "1.0.31"


def test_no_core_dependency_forbids_numpy_1():
    # trackeval 1.3.0 declares numpy>=2.3.2: as a core dependency it would make numpy 1.x
    # uninstallable beside kpr, so it is the `tracking` extra.
    names = {
        re.split(r"[<>=!~ ;\[]", dep, maxsplit=1)[0].lower() for dep in PYPROJECT["dependencies"]
    }
    assert "trackeval" not in names
    assert any(
        dep.startswith("trackeval") for dep in PYPROJECT["optional-dependencies"]["tracking"]
    )


def test_the_readme_states_the_declared_ranges():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Supported versions", 1)[1]
    for dep in PYPROJECT["dependencies"]:
        name = re.split(r"[<>=!~ ;\[]", dep, maxsplit=1)[0]
        if name in check_ranges.CORE and name not in ("pyyaml", "tqdm"):
            spec = dep[len(name) :].strip()
            assert f"`{spec}`" in section, f"README 'Supported versions' does not state {dep!r}"
