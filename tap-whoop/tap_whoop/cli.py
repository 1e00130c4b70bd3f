"""The `tap-whoop` console script.

`tap-whoop auth ...` runs the one-time authorization-code flow; every other invocation is the Singer tap
itself (`--about`, `--discover`, `--test`, `--config ... --state ... --catalog ...`).
"""

from __future__ import annotations

import sys


def _auth_args(argv: list[str]) -> list[str] | None:
    """The `auth` command's arguments, or None when this is a tap invocation.

    `meltano invoke tap-whoop auth` runs `tap-whoop --config FILE auth`: leading `--config` options are
    passed through to the command.
    """
    leading: list[str] = []
    while argv[:1] == ["--config"] and len(argv) >= 2:
        leading, argv = [*leading, *argv[:2]], argv[2:]
    if argv[:1] != ["auth"]:
        return None
    return [*leading, *argv[1:]]


def main() -> None:
    """Dispatch to the authorization command or to the Singer tap."""
    auth_args = _auth_args(sys.argv[1:])
    if auth_args is not None:
        # Imported lazily so the tap's hot path never pays for the authorization flow's imports.
        from tap_whoop.authorize import auth

        auth.main(args=auth_args, prog_name="tap-whoop auth")
        return

    from tap_whoop.tap import TapWhoop

    TapWhoop.cli()
