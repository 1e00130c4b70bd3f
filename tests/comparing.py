"""Comparing warehouse rows across builds.

A database sums floating-point values in whatever order its plan reads them, so the same inputs can give sums
that differ in the last bit (30.2786 vs 30.278599999999997) between an incremental and a full build or
between two runs. Rows are compared exactly except for floats, which must agree to 1e-12 relative.
"""

from __future__ import annotations

from typing import Any

import pytest

RELATIVE = 1e-12


def approx_floats(value: Any) -> Any:
    """`value` with every float inside (rows as tuples, lists or dicts) compared to 1e-12 relative."""
    if isinstance(value, float):
        return pytest.approx(value, rel=RELATIVE, abs=RELATIVE)
    if isinstance(value, dict):
        return {k: approx_floats(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(approx_floats(v) for v in value)
    return value
