"""The webhook event log: its contract (`log`), one module per backend (`file`, `sql`)."""
