"""The vendored WHOOP spec is the source of truth for the tap's schemas and the sandbox: keep it sound."""

import re
from pathlib import Path

import yaml
from openapi_spec_validator import validate
from tap_whoop.streams.base import WhoopStream
from tap_whoop.streams.endpoints import STREAM_TYPES
from tap_whoop.streams.incremental import WhoopCollectionStream

SPEC = Path(__file__).resolve().parents[1] / "spec" / "whoop-openapi.yaml"

# The tap's endpoints (tap_whoop/streams.py); the collections among them are paged with `limit`.
PATHS = [stream.path for stream in STREAM_TYPES if issubclass(stream, WhoopStream)]
# The single-record endpoints reconciliation and webhook updates call (`{id}` named as in the spec aside).
RECORD_PATHS = [stream.record_path for stream in STREAM_TYPES if issubclass(stream, WhoopCollectionStream)]
V2_COLLECTIONS = [stream.path for stream in STREAM_TYPES if issubclass(stream, WhoopCollectionStream)]


def test_spec_is_valid_openapi_with_every_v2_collection():
    spec = yaml.safe_load(SPEC.read_text())
    # WHOOP's published document omits the required info.version; everything else must validate.
    spec["info"].setdefault("version", "unversioned")
    validate(spec)
    assert set(PATHS) <= set(spec["paths"]), "every endpoint the tap reads is in the spec"
    templates = {re.sub(r"\{\w+\}", "{}", path) for path in spec["paths"]}
    assert {re.sub(r"\{\w+\}", "{}", path) for path in RECORD_PATHS} <= templates
    for path in V2_COLLECTIONS:
        limit = next(p for p in spec["paths"][path]["get"]["parameters"] if p["name"] == "limit")
        assert limit["schema"]["maximum"] == 25
    assert not any(p.startswith("/v1/") and "activity-mapping" not in p for p in spec["paths"])
