"""Entry point that runs Meltano with its Snowflake state backend pointed at fakesnow (see fakesnow_shim.py).

Usage: python tests/fakesnow_support/run_meltano.py [meltano arguments...]
"""

import sys

import fakesnow_shim

if __name__ == "__main__":
    fakesnow_shim.patch_connector()
    from meltano.cli import main

    sys.exit(main())
