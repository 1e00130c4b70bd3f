"""Lay out the Astro project the Astronomer image is built from (`make astro-project DEST=<dir>`).

    DEST/Dockerfile, requirements.txt, packages.txt   from orchestrate/astro/
    DEST/dags/                                       the DAG files (orchestrate/dags, with .airflowignore)
    DEST/include/whoop/                              this repository's files, as in the work tree

DEST is normally a directory `astro dev init` made (its .astro/ and other files are kept); dags/ and
include/whoop/ are replaced. Only files git tracks, or would track, are copied: no venvs, no .meltano/, no
.env, no local data.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ASTRO_FILES = ("Dockerfile", "requirements.txt", "packages.txt")
PROJECT_SUBDIR = Path("include") / "whoop"


def repository_files(repo: Path = REPO) -> list[str]:
    """Paths (relative) of the files git tracks or would track, as they are in the work tree now."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],  # noqa: S607 - git on PATH
        cwd=repo,
        capture_output=True,
        check=True,
    )
    return [name for name in listed.stdout.decode().split("\0") if name and (repo / name).is_file()]


def copy_repository(destination: Path, repo: Path = REPO) -> Path:
    for name in repository_files(repo):
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / name, target)
    return destination


def lay_out(destination: Path) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    for name in ASTRO_FILES:
        shutil.copy2(REPO / "orchestrate" / "astro" / name, destination / name)
    for replaced in (destination / "dags", destination / PROJECT_SUBDIR):
        if replaced.exists():
            shutil.rmtree(replaced)
    copy_repository(destination / PROJECT_SUBDIR)
    dags = destination / "dags"
    dags.mkdir()
    source = destination / PROJECT_SUBDIR / "orchestrate" / "dags"
    for path in sorted(source.iterdir()):
        if path.is_file() and (path.suffix == ".py" or path.name == ".airflowignore"):
            shutil.copy2(path, dags / path.name)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("destination", type=Path, help="the Astro project directory (astro dev init)")
    args = parser.parse_args(argv)
    lay_out(args.destination)
    print(f"Astro project in {args.destination}: cd there, then `astro dev start` or `astro deploy`.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
