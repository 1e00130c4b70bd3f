"""Allow `python -m tap_whoop`."""

from tap_whoop.cli import main

main()
