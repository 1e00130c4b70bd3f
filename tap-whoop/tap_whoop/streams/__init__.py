"""The tap's streams: the base of every WHOOP endpoint (`base`), collections read incrementally
(`incremental`, with their progress in `progress`), snapshots (`snapshots`) and one small class per endpoint
(`endpoints`, whose STREAM_TYPES is the tap's stream list)."""
