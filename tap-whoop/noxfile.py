"""The tap's suite on every Python it claims, installed as its users install it (`make test-pythons`).

The Pythons are the classifiers in pyproject.toml: what the package claims is what gets tested. Each can
run the suite twice, in a fresh virtualenv with the tap built and installed as a wheel (not editable) with its
`dev` extra (which pulls in every other extra), plus the WHOOP sandbox the tests serve from:
- `locked`: the versions of the project's lock (requirements/dev.txt as constraints); a dependency the lock
  does not pin fails the session, so "locked" cannot quietly float;
- `newest`: the newest releases the declared ranges allow, what `pip install 'tap-whoop[dev]'` gets today.

Each Python runs with the machine in another zone far from UTC (the repository's tests/zones.py), so that the
interpreter lanes also hold the tap's time arithmetic whatever the zone; `make test` runs no other zone lane.

What `make test` runs (`nox` alone) tests each risk once: the oldest Python at the lock only installs the
wheel, checks that the lock pins everything, and runs the console-script smoke tests (session `lock`); the
tap lane already runs the tap's whole suite on that Python at those pins. The other Pythons run the fast
subset at the newest releases. `nox -s tests` (make test-all) runs every Python at both, with the whole suite.

An interpreter that is not installed is skipped, and nox's summary says so; on CI (CI set) it is an error.
Interpreters are found on PATH as python3.X, or under pyenv's versions/.

    ../.venv/bin/nox                       # as make test does (below)
    ../.venv/bin/nox -s tests              # every Python at both resolutions, as make test-all does
    ../.venv/bin/nox -s 'tests-3.13(newest)' -- -k token_store
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tomllib
from pathlib import Path

import nox

TAP = Path(__file__).resolve().parent
REPO = TAP.parent
LOCK = REPO / "requirements" / "dev.txt"
SANDBOX = REPO / "sandbox"
PROJECT = tomllib.loads((TAP / "pyproject.toml").read_text())["project"]
PYTHONS = [
    c.rsplit(" :: ", 1)[1]
    for c in PROJECT["classifiers"]
    if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
]
# Each Python's machine zone: the repository's zones far from UTC, in turn, the newest Pythons first, so that
# the sessions `make test` runs the fast subset in (all but the oldest) get UTC+14 and UTC-11.
sys.path.insert(0, str(REPO / "tests"))
from zones import ALL as ZONES  # noqa: E402 - the repository's tests/ is not a package

ZONE = {version: ZONES[n % len(ZONES)] for n, version in enumerate([*PYTHONS[1:], PYTHONS[0]])}
# Built here, not in the package: the suite's own packages, never installed from PyPI under these names.
LOCAL = {"tap-whoop", "whoop-sandbox"}

nox.options.default_venv_backend = "uv"
# What `make test` runs (`nox` alone): the lock on the oldest Python, the others at the newest releases.
nox.options.sessions = ["lock", *(f"tests-{v}(newest)" for v in PYTHONS[1:])]
# Never download an interpreter (uv would try): only what is installed counts.
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")


def _add_pyenv_interpreters_to_path() -> None:
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    for version in PYTHONS:
        on_path = shutil.which(f"python{version}")
        # A pyenv shim only runs the versions pyenv is told to use: look behind it.
        if on_path and "shims" not in Path(on_path).parts:
            continue
        found = sorted(root.glob(f"{version}.*/bin/python{version}"), key=lambda p: p.parent.parent.name)
        if found:
            os.environ["PATH"] = os.pathsep.join([str(found[-1].parent), os.environ.get("PATH", "")])


_add_pyenv_interpreters_to_path()


def _locked_names() -> set[str]:
    return {
        _canonical(line.split("==", 1)[0])
        for line in LOCK.read_text().splitlines()
        if re.match(r"^[A-Za-z0-9]", line) and "==" in line
    }


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


INSTALLED = """
import importlib.metadata as m, json, platform
packages = {d.metadata["Name"]: d.version for d in m.distributions()}
print(json.dumps({"python": platform.python_version(), "packages": packages}))
"""
SHOWN = (
    "singer-sdk",
    "sqlalchemy",
    "snowflake-sqlalchemy",
    "snowflake-connector-python",
    "duckdb",
    "duckdb-engine",
    "fakesnow",
    "starlette",
    "uvicorn",
    "requests",
    "urllib3",
    "click",
    "pytest",
)


def _install(session: nox.Session, resolution: str) -> None:
    """The tap's wheel with its `dev` extra and the sandbox, at the lock or the newest releases; logs what."""
    constraints = ["--constraint", str(LOCK)] if resolution == "locked" else []
    session.install(*constraints, f"{TAP}[dev]", str(SANDBOX))
    installed = json.loads(session.run("python", "-c", INSTALLED, silent=True) or "{}")
    versions = {_canonical(name): version for name, version in installed["packages"].items()}
    if resolution == "locked":
        floating = sorted(set(versions) - _locked_names() - LOCAL)
        if floating:
            session.error(
                f"not pinned by {LOCK.relative_to(REPO)}: {', '.join(floating)}"
                " (add it to requirements/dev.in, then re-compile the lock)"
            )
    resolved = ", ".join(f"{n} {versions[n]}" for n in SHOWN if n in versions)
    session.log(f"Python {installed['python']}, {resolution}, TZ={ZONE[str(session.python)]}: {resolved}")


def _pytest(session: nox.Session, *args: str) -> None:
    # append: the installed wheel, not the source tree beside the tests, is what the suite imports.
    session.run(
        "pytest",
        "--import-mode=append",
        "-p",
        "no:cacheprovider",
        "-q",
        *args,
        env={"TZ": ZONE[str(session.python)]},
    )


@nox.session(python=PYTHONS)
@nox.parametrize("resolution", ["locked", "newest"], ids=["locked", "newest"])
def tests(session: nox.Session, resolution: str) -> None:
    _install(session, resolution)
    _pytest(session, *(session.posargs or ["tests"]))


@nox.session(python=PYTHONS[0])
def lock(session: nox.Session) -> None:
    """The lock installs on the oldest Python and pins everything; the console scripts run (smoke tests).

    Arguments select tests as for `tests`, but only smoke tests run (the last `-m` wins in pytest)."""
    _install(session, "locked")
    _pytest(session, *(session.posargs or ["tests"]), "-m", "smoke")
