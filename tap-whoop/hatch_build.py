"""Build hook: an editable install of the tap from its repository takes the WHOOP sandbox from the checkout.

The `dev` extra names `whoop-sandbox` by version, as published on PyPI beside the tap: PyPI refuses packages
whose metadata holds direct references (`name @ file:...`). Developers change the tap and the sandbox
together, so an editable wheel built in a checkout (`pip install -e './tap-whoop[dev]'`) adds the checkout's
sandbox/ as a direct reference to that extra; the version range still applies to it. Regular wheels and
sdists (`python -m build`, the release) keep the published metadata unchanged.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SANDBOX = "whoop-sandbox"


class LocalSandboxHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version != "editable":
            return
        checkout = Path(self.root).resolve().parent / "sandbox"
        project = checkout / "pyproject.toml"
        if not project.is_file() or tomllib.loads(project.read_text())["project"]["name"] != SANDBOX:
            return  # not a checkout of the repository (say, an unpacked sdist): the published sandbox it is
        build_data["dependencies"].append(f"{SANDBOX} @ {checkout.as_uri()} ; extra == 'dev'")
