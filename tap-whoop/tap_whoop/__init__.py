"""Singer tap for the WHOOP API v2."""
