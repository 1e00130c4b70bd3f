"""The vendored WHOOP spec is the source of truth for the tap's schemas and the sandbox: keep it sound."""

from pathlib import Path

import yaml
from openapi_spec_validator import validate

SPEC = Path(__file__).resolve().parents[1] / "spec" / "whoop-openapi.yaml"

V2_COLLECTIONS = ["/v2/cycle", "/v2/recovery", "/v2/activity/sleep", "/v2/activity/workout"]


def test_spec_is_valid_openapi_with_every_v2_collection():
    spec = yaml.safe_load(SPEC.read_text())
    # WHOOP's published document omits the required info.version; everything else must validate.
    spec["info"].setdefault("version", "unversioned")
    validate(spec)
    for path in V2_COLLECTIONS:
        limit = next(p for p in spec["paths"][path]["get"]["parameters"] if p["name"] == "limit")
        assert limit["schema"]["maximum"] == 25
    assert not any(p.startswith("/v1/") and "activity-mapping" not in p for p in spec["paths"])
