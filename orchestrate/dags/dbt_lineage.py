"""The warehouse tables a DAG reads and writes, named as OpenLineage and Cosmos name them, at parse time.

Cosmos gives each dbt task's tables to Airflow (assets) and to OpenLineage (events) after dbt ran, named
by OpenLineage's dbt integration: the namespace of the warehouse (`duckdb://<file>`,
`snowflake://<account>`, `postgres://<host>:<port>`) and `<database>.<schema>.<table>`; the asset URI is
the two joined by Cosmos (`duckdb:///…/whoop.duckdb/whoop/raw/cycles`). The extract-load task and the
report's DAG have to name the same tables before anything ran: the raw tables the loader writes are the
dbt project's sources (transform/models/staging/whoop/_whoop__sources.yml), the marts the report reads are
the models under models/marts; both read from the dbt manifest, the namespace from the dbt profile
rendered as dbt renders it. Same names, so Airflow's asset graph and the OpenLineage graph each run
WHOOP → raw → staging → marts, and the report's DAG runs when Cosmos reports the marts updated.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml
from cosmos.dataset import _ADAPTER_NAMESPACE_RESOLVERS, construct_dataset_uri

# The dbt project's directory of marts (models/marts): the report reads these.
MARTS_DIR = "marts"
# The profile field that names the warehouse, per adapter: left empty where the DAGs are parsed (say no
# SNOWFLAKE_ACCOUNT in a development Airflow), the tables go unnamed rather than misnamed.
WAREHOUSE_FIELD = {"duckdb": "path", "snowflake": "account", "postgres": "host"}


@dataclass(frozen=True, order=True)
class Table:
    """One warehouse table as OpenLineage names it."""

    namespace: str
    name: str

    @property
    def uri(self) -> str:
        """The URI of the Airflow asset Cosmos emits for this table."""
        return construct_dataset_uri(self.namespace, self.name, warn_uri_migration=False)


def render_profile(profiles_yml: Path, profile: str, target: str, env: dict[str, str]) -> dict[str, Any]:
    """The profile's target with `env_var(...)` rendered from `env`, as dbt (and OpenLineage) render it."""
    outputs = yaml.safe_load(profiles_yml.read_text())[profile]["outputs"][target]
    jinja = jinja2.Environment(autoescape=False)  # noqa: S701 - renders YAML values, not HTML
    jinja.globals["env_var"] = lambda name, default="": env.get(name, default)
    # dbt's casts; OpenLineage's renderer takes them as no-ops too.
    jinja.filters.update(dict.fromkeys(("as_number", "as_bool", "as_native"), lambda value: value))
    return {
        key: jinja.from_string(value).render() if isinstance(value, str) else value
        for key, value in outputs.items()
    }


def warehouse_namespace(profile: dict[str, Any]) -> str | None:
    """OpenLineage's namespace of the profile's warehouse; None when the profile does not say (e.g. no
    Snowflake account where the DAGs are parsed) or the adapter has no OpenLineage naming."""
    # Cosmos's own table of OpenLineage's naming per adapter (what it uses to name assets ahead of a run).
    adapter = str(profile.get("type", ""))
    resolver = _ADAPTER_NAMESPACE_RESOLVERS.get(adapter)
    if resolver is None or not profile.get(WAREHOUSE_FIELD.get(adapter, "type")):
        return None
    return str(resolver(profile))


@functools.cache
def _manifest(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def raw_tables(manifest: Path, namespace: str) -> list[Table]:
    """The dbt sources: the raw tables the loader writes (one per stream)."""
    # OpenLineage names a source by its `name` (not its identifier); keeping that makes the extract-load
    # task's outputs the very datasets the staging models read.
    sources = _manifest(manifest)["sources"].values()
    return sorted(Table(namespace, f"{node['database']}.{node['schema']}.{node['name']}") for node in sources)


def mart_tables(manifest: Path, namespace: str) -> list[Table]:
    """The marts: the models under models/marts that build a relation (not ephemeral)."""
    nodes = _manifest(manifest)["nodes"].values()
    return sorted(
        Table(namespace, f"{node['database']}.{node['schema']}.{node['alias']}")
        for node in nodes
        if node["resource_type"] == "model"
        and node["fqn"][1:2] == [MARTS_DIR]
        and node["config"].get("materialized") != "ephemeral"
    )
