#!/usr/bin/env python3
"""`make check-ranges`: the dependency ranges pyproject.toml declares, tested at both ends.

Builds (or reuses) one venv per end under build/check-ranges/ and runs the suite's fast subset in
each (official checkpoints, predictor, imaging and bad images, data pipeline and datasets):

* ``low``: every core dependency at the lowest version pyproject allows (``>=X`` → ``==X``); the
  other dependencies as pip resolves them beside those.
* ``high``: plain ``pip install -e .`` — the newest versions pyproject allows (what a new user
  gets; requirements/lock.txt is not used), within this machine's pip constraints, if any.

A venv is reused while the requirements it was built from are unchanged (stamp file). Stdlib
only; run with the project's Python 3.11. Exit status 0 when every end passes; any failure is one
line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = ROOT / "build" / "check-ranges"

# Dependencies whose lower bounds are tested: what loading checkpoints, the predictor, imaging and
# the data pipeline run on. The others (tensorboard, matplotlib, serve's fastapi/uvicorn…) resolve
# freely beside them.
CORE = (
    "torch",
    "torchvision",
    "timm",
    "numpy",
    "safetensors",
    "opencv-python-headless",
    "pillow",
    "scipy",
    "albumentations",
    "pyyaml",
    "tqdm",
)
TEST_REQUIREMENTS = ("pytest>=8", "hypothesis>=6.100")
SUBSET = (
    "tests/checkpoint",
    "tests/test_predictor.py",
    "tests/modeling/test_official_equivalence.py",
    "tests/data",
    "tests/test_imaging_versions.py",
    "tests/test_cli.py::test_huge_and_corrupt_images_are_one_line_errors",
)
_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*?)\s*(;.*)?$")


class RangeCheckError(Exception):
    pass


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lowest_pins(dependencies: list[str], core: tuple[str, ...] = CORE) -> list[str]:
    """``name==lowest`` for each core dependency: the version of its ``>=``/``==`` bound."""
    by_name = {}
    for dep in dependencies:
        match = _REQ.match(dep)
        if match is None:
            raise RangeCheckError(f"pyproject.toml: cannot parse dependency {dep!r}")
        by_name[_norm(match.group(1))] = (match.group(1), match.group(3))
    pins = []
    for name in core:
        if _norm(name) not in by_name:
            raise RangeCheckError(f"pyproject.toml: core dependency {name!r} is not declared")
        declared, spec = by_name[_norm(name)]
        bounds = re.findall(r"(>=|==|~=)\s*([0-9][^,\s]*)", spec)
        if not bounds:
            raise RangeCheckError(
                f"pyproject.toml: {declared} {spec!r} declares no lower bound, so none is tested"
            )
        pins.append(f"{declared}=={bounds[0][1]}")
    return pins


def _run(cmd: list[str], what: str, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()
        reason = tail[-1] if tail else f"exit status {done.returncode}"
        raise RangeCheckError(f"{what}: {reason}")


def build_venv(path: Path, constraints: list[str]) -> Path:
    """Create (or reuse, if built from the same requirements) a venv with kpr installed."""
    python = path / "bin" / "python"
    stamp = path / ".kpr-ranges-stamp"
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    project = tomllib.loads(pyproject)["project"]
    wanted = "\n".join([*project["dependencies"], *constraints, *TEST_REQUIREMENTS]) + "\n"
    if python.exists() and stamp.exists() and stamp.read_text(encoding="utf-8") == wanted:
        print(f"  reusing {path.relative_to(ROOT)}", flush=True)
        return python
    shutil.rmtree(path, ignore_errors=True)
    venv.EnvBuilder(with_pip=True).create(path)
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    _run([*pip, "--upgrade", "pip", "setuptools>=68"], f"{path.name}: installing pip/setuptools")
    cfile = path / "constraints.txt"
    cfile.write_text("".join(f"{c}\n" for c in constraints), encoding="utf-8")
    _run(
        [*pip, "-c", str(cfile), "--no-build-isolation", "-e", ".", *TEST_REQUIREMENTS],
        f"{path.name}: pip install -e . with {', '.join(constraints) or 'no constraints'}",
    )
    stamp.write_text(wanted, encoding="utf-8")
    return python


def versions(python: Path) -> str:
    names = ("torch", "timm", "numpy", "opencv-python-headless", "pillow", "scipy")
    code = (
        "import importlib.metadata as m, sys; "
        "print(', '.join(f'{n} {m.version(n)}' for n in sys.argv[1:]))"
    )
    done = subprocess.run([str(python), "-c", code, *names], capture_output=True, text=True)
    return done.stdout.strip() or done.stderr.strip().splitlines()[-1]


def run_subset(python: Path, name: str) -> None:
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *SUBSET]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    summary = lines[-1] if lines else (done.stderr.strip().splitlines() or ["no output"])[-1]
    if done.returncode != 0:
        failed = [ln for ln in lines if ln.startswith(("FAILED", "ERROR"))]
        raise RangeCheckError(f"{name}: {failed[0] if failed else summary}")
    print(f"  {summary}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ends", default="low,high", help="comma-separated: low, high")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="where the venvs live")
    args = parser.parse_args(argv)
    try:
        ends = [e.strip() for e in args.ends.split(",") if e.strip()]
        if not ends or set(ends) - {"low", "high"}:
            raise RangeCheckError(f"--ends: expected low and/or high, got {args.ends!r}")
        project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
        plans = {"low": lowest_pins(project["dependencies"]), "high": []}
        for end in ends:
            start = time.monotonic()
            print(f"[{end}] {' '.join(plans[end]) or 'newest allowed versions'}", flush=True)
            python = build_venv(args.dir / end, plans[end])
            print(f"  {versions(python)}", flush=True)
            run_subset(python, end)
            print(f"  {end}: {time.monotonic() - start:.0f} s", flush=True)
    except RangeCheckError as exc:
        print(f"check-ranges: {exc}", file=sys.stderr)
        return 1
    except (OSError, subprocess.SubprocessError, tomllib.TOMLDecodeError, KeyError) as exc:
        print(f"check-ranges: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
