"""Entry point that runs the installed tap-whoop with its Snowflake token store pointed at fakesnow.

Executed by the tap-whoop plugin venv's own Python, with this directory first on sys.path.
"""

import fakesnow_shim

if __name__ == "__main__":
    fakesnow_shim.patch_connector()
    from tap_whoop.cli import main

    main()
