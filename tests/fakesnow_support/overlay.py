"""A throw-away Meltano system directory that swaps fakesnow wrappers in for the Snowflake clients.

Meltano runs a plugin from `$MELTANO_SYS_DIR_ROOT/<type>/<name>/venv/bin/<executable>`. Pointing
MELTANO_SYS_DIR_ROOT at this overlay leaves meltano.yml (so the production plugin definitions) untouched:
every installed plugin is linked from the project's .meltano/, except target-snowflake and tap-whoop, whose
executables become scripts running the same installed plugins through run_*.py (see WRAPPERS). The overlay
starts without a system database, so each test has its own Meltano state. Run Meltano with --no-install so
it keeps the overlay as it is.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
# (plugin type, plugin name, executable) -> the entry point that runs it against fakesnow.
WRAPPERS = {
    ("loaders", "target-snowflake", "target-snowflake"): "run_target_snowflake.py",
    # The tap talks to Snowflake only for its token store (token_store = snowflake://...).
    ("extractors", "tap-whoop", "tap-whoop"): "run_tap_whoop.py",
}


def build_sys_dir(project_sys_dir: Path, dest: Path, *, fakesnow: bool = True) -> Path:
    """Create the overlay in `dest` (which must not exist yet) and return it.

    With fakesnow=False it is only a private system directory (own system database, own .meltano/run for the
    generated config and state files) over the project's installed plugins.
    """
    wrapped = {(kind, name): (executable, script) for (kind, name, executable), script in WRAPPERS.items()}
    for kind, name in wrapped:
        if not (project_sys_dir / kind / name / "venv" / "bin" / "python").exists():
            msg = f"{name} is not installed under {project_sys_dir}: run `meltano install` first"
            raise FileNotFoundError(msg)
    dest.mkdir(parents=True)
    for plugin_type in project_sys_dir.iterdir():
        if not plugin_type.is_dir() or plugin_type.name in ("run", "logs", "cache"):
            continue
        (dest / plugin_type.name).mkdir()
        for plugin in plugin_type.iterdir():
            if not fakesnow or (plugin_type.name, plugin.name) not in wrapped:
                (dest / plugin_type.name / plugin.name).symlink_to(plugin)
    if not fakesnow:
        return dest
    for (kind, name), (executable, script) in wrapped.items():
        real_python = project_sys_dir / kind / name / "venv" / "bin" / "python"
        bin_dir = dest / kind / name / "venv" / "bin"
        bin_dir.mkdir(parents=True)
        wrapper = bin_dir / executable
        wrapper.write_text(f'#!/bin/sh\nexec "{real_python}" "{HERE / script}" "$@"\n', encoding="utf-8")
        wrapper.chmod(0o755)
    return dest
