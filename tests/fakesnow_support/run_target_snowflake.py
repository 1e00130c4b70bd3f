"""Entry point that runs the production target-snowflake against fakesnow (see fakesnow_shim.py).

Executed by the target-snowflake plugin venv's own Python, with this directory first on sys.path.
"""

import sys

import fakesnow_shim

if __name__ == "__main__":
    fakesnow_shim.patch_connector()
    fakesnow_shim.patch_target_snowflake()
    from target_snowflake.target import TargetSnowflake

    sys.exit(TargetSnowflake.cli())
