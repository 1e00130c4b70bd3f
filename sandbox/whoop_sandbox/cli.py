"""`python -m whoop_sandbox`: serve the sandbox until SIGTERM/SIGINT (for the demo and out-of-process use)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path

from .sandbox import WHOOP_RATE_LIMITS, Sandbox
from .signals import DEFAULT_INTERVAL


def _rate_limits(text: str) -> list[tuple[int, float]]:
    if text.strip().lower() in ("", "none", "off"):
        return []
    try:
        return [(int(limit), float(window)) for limit, window in (p.split("/") for p in text.split(","))]
    except ValueError as exc:
        raise argparse.ArgumentTypeError("expected LIMIT/SECONDS[,LIMIT/SECONDS...] or 'none'") from exc


def _delays(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError("expected SECONDS[,SECONDS...]") from exc


def _aware(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("--now needs a UTC offset, e.g. 2025-06-01T12:00:00+00:00")
    return value


def _athlete_days(text: str) -> dict[int, int]:
    try:
        pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
        return {int(index): int(days) for index, days in pairs}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected INDEX=DAYS[,INDEX=DAYS...], got {text!r}") from None


def write_credentials(path: Path, credentials: dict) -> None:
    """Write atomically with mode 0600: readers waiting for the file never see half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(credentials, handle, indent=2)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m whoop_sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--days", type=int, default=90, help="days of history per athlete")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--athletes", type=int, default=1)
    parser.add_argument(
        "--athlete-days",
        type=_athlete_days,
        default=None,
        help="history of its own length for some athletes, e.g. 7=400,8=30 (athlete index=days)",
    )
    parser.add_argument("--access-token-ttl", type=float, default=3600)
    parser.add_argument(
        "--rate-limits",
        type=_rate_limits,
        default=list(WHOOP_RATE_LIMITS),
        help="e.g. 100/60,10000/86400 or none",
    )
    parser.add_argument(
        "--now", type=_aware, default=None, help="pretend it is this time (ISO 8601 with offset)"
    )
    parser.add_argument(
        "--fault-rate", type=float, default=0.0, help="share of API requests failing with 5xx"
    )
    parser.add_argument(
        "--webhook-url",
        default=None,
        help="deliver WHOOP webhooks for every change to this URL, signed with the app's client secret",
    )
    parser.add_argument(
        "--webhook-retry-delays",
        type=_delays,
        default=None,
        help="seconds between delivery attempts, e.g. 1,2,4,8,16 (default: WHOOP's, about an hour)",
    )
    parser.add_argument(
        "--signal-interval",
        type=float,
        default=DEFAULT_INTERVAL,
        help="seconds between the samples of a sleep's signal stream (WHOOP documents none; 1 is dense)",
    )
    parser.add_argument(
        "--credentials-out",
        type=Path,
        default=None,
        help="write api/token/auth URLs, client id/secret and athlete 0's refresh token here",
    )
    args = parser.parse_args(argv)

    try:
        sandbox = Sandbox(
            seed=args.seed,
            days=args.days,
            athletes=args.athletes,
            access_token_ttl=args.access_token_ttl,
            rate_limits=args.rate_limits,
            now=args.now,
            fault_rate=args.fault_rate,
            athlete_days=args.athlete_days,
            signal_interval=args.signal_interval,
        ).start(host=args.host, port=args.port)
        if args.webhook_url:
            sandbox.configure_webhooks(args.webhook_url, retry_delays=args.webhook_retry_delays)
    except (ValueError, OSError) as exc:
        print(f"whoop-sandbox: {exc}", file=sys.stderr)
        return 2
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    try:
        print(f"WHOOP sandbox listening on {sandbox.base_url} (API {sandbox.api_url})", flush=True)
        if args.credentials_out:
            write_credentials(args.credentials_out, sandbox.credentials(0))
            print(f"credentials written to {args.credentials_out}", flush=True)
        print(f"control plane: {sandbox.base_url}/_sandbox/  (stop with SIGTERM or Ctrl-C)", flush=True)
        done.wait()
    finally:
        sandbox.stop()
    return 0
