"""The dbt manifests the DAGs are rendered from: built at install/deploy time, refused when stale.

Rendering from a manifest keeps DAG parsing fast and free of any warehouse (dbt is not run at parse time).
Each dbt plugin a schedule uses gets its own, built by `dbt parse` through `meltano invoke <plugin> parse`
(so with the plugin's own dbt, profile and target), into `orchestrate/build/dbt/<plugin>/manifest.json`
beside a `build.json` holding a fingerprint of the dbt project it was parsed from. A DAG file whose
manifest is missing or older than the project fails to import with the command that fixes it.
`build` first writes the description of the Meltano project the DAG file reads instead of asking Meltano
(meltano_project.describe_project), and parses again only the manifests that are not current:

    python orchestrate/dags/dbt_manifest.py build   # `make dbt-manifests`; also run by the Astronomer image
    python orchestrate/dags/dbt_manifest.py check   # `make check-dbt-manifests`: exit 1 if any is stale

Both take plugin names; by default the dbt plugins of the schedules that become DAGs (MELTANO_DAG_SCHEDULES).
Kept free of Airflow imports: it runs with any Python that can run meltano.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import meltano_project
from meltano_project import CACHE_DIR, MELTANO_BIN, MeltanoProjectError

MANIFEST_DIR = CACHE_DIR / "dbt"
BUILD_TIMEOUT = 600
# What dbt writes or fetches into a project; none of it changes what the manifest describes.
_NOT_PROJECT = {"target", "logs", "dbt_packages", ".user.yml"}
# `env_var('NAME')` without a default: the profile cannot even be rendered without NAME.
_REQUIRED_ENV_VAR = re.compile(r"""env_var\(\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]\s*\)""")
PARSE_PLACEHOLDER = "unset-at-parse-time"


class StaleManifestError(MeltanoProjectError):
    """The manifest is missing or was parsed from another state of the dbt project."""


def build_command(plugins: list[str] | None = None) -> str:
    suffix = f" {' '.join(plugins)}" if plugins else ""
    return f"`make dbt-manifests` (or `python orchestrate/dags/dbt_manifest.py build{suffix}`)"


def project_fingerprint(project_dir: Path) -> str:
    """A digest of every file of the dbt project (models, tests, macros, YAML, dbt_project.yml...)."""
    digest = hashlib.sha256()
    for path in sorted(project_dir.rglob("*")):
        relative = path.relative_to(project_dir)
        if relative.parts[0] in _NOT_PROJECT or any(part.startswith(".") for part in relative.parts):
            continue
        if path.is_file():
            digest.update(str(relative).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def manifest_path(plugin: str) -> Path:
    return MANIFEST_DIR / plugin / "manifest.json"


def current_manifest(plugin: str, project_dir: Path) -> Path:
    """The plugin's manifest if it was parsed from the dbt project as it is now, else StaleManifestError."""
    manifest = manifest_path(plugin)
    try:
        build = json.loads((manifest.parent / "build.json").read_text())
    except (OSError, ValueError):
        build = None
    if build is None or not manifest.exists():
        raise StaleManifestError(
            f"No dbt manifest for {plugin} in {manifest.parent}: run {build_command([plugin])}."
        )
    if build.get("project_dir") != str(project_dir) or build.get("fingerprint") != project_fingerprint(
        project_dir
    ):
        raise StaleManifestError(
            f"The dbt manifest for {plugin} is stale ({project_dir} changed since it was parsed): "
            f"run {build_command([plugin])}."
        )
    return manifest


def _parse_env(profiles_dir: Path) -> dict[str, str]:
    """The environment for `dbt parse`: placeholders for the profile's required variables that are unset.

    dbt renders the profile even to parse, but never connects; the Astronomer image builds its manifest
    without the deployment's Snowflake credentials.
    """
    env = dict(os.environ)
    profiles = profiles_dir / "profiles.yml"
    text = profiles.read_text() if profiles.exists() else ""
    for name in _REQUIRED_ENV_VAR.findall(text):
        env.setdefault(name, PARSE_PLACEHOLDER)
    return env


def dbt_dirs(invocation: meltano_project.Invocation) -> tuple[Path, Path]:
    """The dbt project and profiles directories Meltano gives the plugin (DBT_PROJECT_DIR, _PROFILES_DIR)."""
    env = invocation.env
    if not env.get("DBT_PROJECT_DIR"):
        raise MeltanoProjectError(
            f"Meltano sets no DBT_PROJECT_DIR for {invocation.name}: give it a project_dir setting with "
            "`env: DBT_PROJECT_DIR` (see the dbt utilities in meltano.yml)."
        )
    project_dir = Path(env["DBT_PROJECT_DIR"])
    return project_dir, Path(env.get("DBT_PROFILES_DIR") or project_dir)


def build(plugin: str, invocation: meltano_project.Invocation) -> Path:
    """Parse the plugin's dbt project through Meltano and store the manifest with its fingerprint."""
    project_dir, profiles_dir = dbt_dirs(invocation)
    fingerprint = project_fingerprint(project_dir)
    target = manifest_path(plugin)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        env = {**_parse_env(profiles_dir), "DBT_TARGET_PATH": scratch}
        command = [MELTANO_BIN, "--log-level=warning", "invoke", plugin, "parse"]
        meltano_project.run_meltano(
            command, f"parsing {plugin}'s dbt project", env=env, timeout=BUILD_TIMEOUT
        )
        parsed = Path(scratch) / "manifest.json"
        if not parsed.exists():
            raise MeltanoProjectError(f"`{shlex.join(command)}` wrote no manifest.json into {scratch}")
        shutil.move(parsed, target)
    metadata = json.loads(target.read_text())["metadata"]
    build_info = {
        "plugin": plugin,
        "project_dir": str(project_dir),
        "fingerprint": fingerprint,
        "dbt_executable": invocation.executable,
        "dbt_version": metadata.get("dbt_version"),
        "adapter_type": metadata.get("adapter_type"),
    }
    (target.parent / "build.json").write_text(json.dumps(build_info, indent=2) + "\n")
    return target


def _is_current(plugin: str, invocation: meltano_project.Invocation) -> bool:
    """Parsed from the project as it is, by the same dbt (a dbt upgrade may change the manifest)."""
    try:
        manifest = current_manifest(plugin, dbt_dirs(invocation)[0])
        build_info = json.loads((manifest.parent / "build.json").read_text())
    except (StaleManifestError, OSError, ValueError):
        return False
    return build_info.get("dbt_executable") == invocation.executable


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("build", "check"):
        print(__doc__, file=sys.stderr)
        return 2
    action, names = argv[0], argv[1:]
    try:
        if action == "build":
            written = meltano_project.describe_project()
            print(f"Meltano project: {written}")
        schedules, plugins = meltano_project.read_project()
        scheduled = {name for schedule in schedules for name in meltano_project.commanded_plugins(schedule)}
        invocations = {
            name: plugin for name, plugin in plugins.items() if name in scheduled and plugin.is_dbt
        }
        if names:
            unknown = sorted(set(names) - set(invocations))
            if unknown:
                raise MeltanoProjectError(
                    f"Not dbt plugins of the scheduled jobs: {unknown} (they are {sorted(invocations)})"
                )
            invocations = {name: invocations[name] for name in names}
        stale = []
        for name, invocation in invocations.items():
            project_dir, _ = dbt_dirs(invocation)
            if action == "build" and not _is_current(name, invocation):
                built = build(name, invocation)
                print(f"{name}: {built} (parsed from {project_dir})")
            elif action == "build":
                print(f"{name}: up to date")
            else:
                try:
                    current_manifest(name, project_dir)
                    print(f"{name}: up to date")
                except StaleManifestError as exc:
                    stale.append(name)
                    print(str(exc), file=sys.stderr)
        return 1 if stale else 0
    except MeltanoProjectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
