"""The `tap-whoop` console script.

`tap-whoop auth ...` runs the one-time authorization-code flow; every other invocation is the Singer tap
itself (`--about`, `--discover`, `--test`, `--config ... --state ... --catalog ...`).
"""

from __future__ import annotations

import sys


def main() -> None:
    """Dispatch to the authorization command or to the Singer tap."""
    if sys.argv[1:2] == ["auth"]:
        # Imported lazily so the tap's hot path never pays for the authorization flow's imports.
        from tap_whoop.authorize import auth

        auth.main(args=sys.argv[2:], prog_name="tap-whoop auth")
        return

    from tap_whoop.tap import TapWhoop

    TapWhoop.cli()
