"""An offline stand-in for the WHOOP v2 API for tests, benchmarks and the demo: `Sandbox(...).start()`."""

from .sandbox import Sandbox

__all__ = ["Sandbox"]
