"""Talking to WHOOP: the one client and its retry policy, the app's rate-limit pacer, pagination."""
