"""tap-whoop and whoop-sandbox build into publishable distributions, and an editable install of the tap from
this checkout takes the checkout's sandbox (tap-whoop/hatch_build.py; the README's Development section).

PyPI refuses metadata with direct references (`name @ file:...`), and `twine check` does not look for them,
so the test reads every Requires-Dist itself."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from build import ProjectBuilder
from build.env import DefaultIsolatedEnv

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
PROJECTS = {"tap-whoop": REPO / "tap-whoop", "whoop-sandbox": REPO / "sandbox"}


def metadata_of(artifact: Path) -> list[str]:
    """The Requires-Dist lines of a wheel's METADATA or an sdist's PKG-INFO."""
    if artifact.suffix == ".whl":
        with zipfile.ZipFile(artifact) as wheel:
            (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
            text = wheel.read(name).decode()
    else:
        with tarfile.open(artifact) as sdist:
            (member,) = [
                m for m in sdist.getmembers() if m.name.count("/") == 1 and m.name.endswith("PKG-INFO")
            ]
            text = sdist.extractfile(member).read().decode()
    return Parser().parsestr(text).get_all("Requires-Dist") or []


def build(project: Path, distribution: str, outdir: Path) -> Path:
    with DefaultIsolatedEnv() as env:
        builder = ProjectBuilder.from_isolated_env(env, project)
        env.install(builder.build_system_requires)
        env.install(builder.get_requires_for_build(distribution))
        return Path(builder.build(distribution, outdir))


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    outdir = tmp_path_factory.mktemp("dist")
    for project in PROJECTS.values():
        for distribution in ("sdist", "wheel"):
            build(project, distribution, outdir)
    return outdir


def test_distributions_are_publishable(dist: Path):
    artifacts = sorted(dist.iterdir())
    assert len(artifacts) == 4, artifacts
    for artifact in artifacts:
        direct = [r for r in metadata_of(artifact) if " @ " in r]
        assert not direct, f"{artifact.name} has direct references PyPI would refuse: {direct}"
    check = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, artifacts)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_dev_extra_names_the_published_sandbox(dist: Path):
    (wheel,) = dist.glob("tap_whoop-*.whl")
    assert [r for r in metadata_of(wheel) if r.startswith("whoop-sandbox")] == [
        "whoop-sandbox~=0.1.0; extra == 'dev'"
    ]


def test_an_editable_install_from_the_checkout_takes_its_sandbox(tmp_path: Path):
    wheel = build(PROJECTS["tap-whoop"], "editable", tmp_path)
    sandbox = [r for r in metadata_of(wheel) if r.startswith("whoop-sandbox @")]
    assert sandbox == [f"whoop-sandbox @ {PROJECTS['whoop-sandbox'].as_uri()} ; extra == 'dev'"]
