"""An offline stand-in for the WHOOP v2 API for tests, benchmarks and the demo: `Sandbox(...).start()`."""

from .clock import ManualClock, RealClock
from .sandbox import Sandbox

__all__ = ["ManualClock", "RealClock", "Sandbox"]
