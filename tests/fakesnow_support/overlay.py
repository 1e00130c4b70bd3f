"""A throw-away Meltano system directory that swaps the fakesnow wrapper in for target-snowflake.

Meltano runs a plugin from `$MELTANO_SYS_DIR_ROOT/<type>/<name>/venv/bin/<executable>`. Pointing
MELTANO_SYS_DIR_ROOT at this overlay leaves meltano.yml (so the production plugin definitions) untouched:
every installed plugin is linked from the project's .meltano/, except target-snowflake, whose executable
becomes a script running the same installed target-snowflake through run_target_snowflake.py. The overlay
starts without a system database, so each test has its own Meltano state. Run Meltano with --no-install so
it keeps the overlay as it is.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
WRAPPED = ("loaders", "target-snowflake")


def build_sys_dir(project_sys_dir: Path, dest: Path, *, fakesnow: bool = True) -> Path:
    """Create the overlay in `dest` (which must not exist yet) and return it.

    With fakesnow=False it is only a private system directory (own system database, own .meltano/run for the
    generated config and state files) over the project's installed plugins.
    """
    real_venv = project_sys_dir.joinpath(*WRAPPED, "venv")
    if not (real_venv / "bin" / "python").exists():
        msg = f"the plugins are not installed under {project_sys_dir}: run `meltano install` first"
        raise FileNotFoundError(msg)
    dest.mkdir(parents=True)
    for plugin_type in project_sys_dir.iterdir():
        if not plugin_type.is_dir() or plugin_type.name in ("run", "logs", "cache"):
            continue
        (dest / plugin_type.name).mkdir()
        for plugin in plugin_type.iterdir():
            if not fakesnow or (plugin_type.name, plugin.name) != WRAPPED:
                (dest / plugin_type.name / plugin.name).symlink_to(plugin)
    if not fakesnow:
        return dest
    bin_dir = dest.joinpath(*WRAPPED, "venv", "bin")
    bin_dir.mkdir(parents=True)
    wrapper = bin_dir / "target-snowflake"
    wrapper.write_text(
        f'#!/bin/sh\nexec "{real_venv}/bin/python" "{HERE}/run_target_snowflake.py" "$@"\n', encoding="utf-8"
    )
    wrapper.chmod(0o755)
    return dest
