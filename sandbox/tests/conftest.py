"""Shared helpers for the sandbox's own tests: the WHOOP spec's schemas and an authorized API client."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
import yaml
from openapi_schema_validator import OAS30Validator

SPEC_PATH = Path(__file__).resolve().parents[2] / "spec" / "whoop-openapi.yaml"


@pytest.fixture(scope="session")
def spec() -> dict:
    return yaml.safe_load(SPEC_PATH.read_text())


@pytest.fixture(scope="session")
def validate(spec):
    """validate(schema_name, payload): raises unless payload matches the spec's component schema."""
    validators = {}

    def check(name: str, payload) -> None:
        if name not in validators:
            schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
            validators[name] = OAS30Validator(schema, format_checker=OAS30Validator.FORMAT_CHECKER)
        validators[name].validate(payload)

    return check


class Client:
    """An athlete's authorized session against a sandbox, as a tap would hold it."""

    def __init__(
        self, sandbox, athlete: int = 0, client_id: str | None = None, client_secret: str | None = None
    ):
        self.sandbox = sandbox
        self.client_id = client_id or sandbox.client_id
        self.client_secret = client_secret or sandbox.client_secret
        self.session = requests.Session()
        refresh = sandbox.grant_refresh_token(athlete, client_id=self.client_id)
        self.tokens = self.refresh(refresh).json()

    def refresh(self, refresh_token: str) -> requests.Response:
        return requests.post(
            self.sandbox.token_url,
            data={
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "scope": "offline",
            },
            timeout=10,
        )

    def get(self, path: str, token: str | None = None, timeout: float = 10, **params) -> requests.Response:
        token = token or self.tokens["access_token"]
        return self.session.get(
            self.sandbox.api_url + path,
            params=params,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )

    def all_records(self, path: str, **params) -> list[dict]:
        records, token = [], None
        while True:
            query = {**params, "limit": 25}
            if token:
                query["nextToken"] = token
            response = self.get(path, **query)
            assert response.status_code == 200, response.text
            page = response.json()
            records.extend(page["records"])
            token = page.get("next_token")
            if not token:
                return records


@pytest.fixture
def client(whoop_sandbox) -> Client:
    return Client(whoop_sandbox)


@pytest.fixture
def make_client():
    return Client
