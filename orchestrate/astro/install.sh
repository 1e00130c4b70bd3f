#!/usr/bin/env bash
# Build step of the Astronomer image (the Dockerfile's RUN; the image test runs it on a tree laid out the same
# way): Meltano in a venv of its own, the plugins of the schedules that become DAGs, their dbt manifests.
#
#   MELTANO_PROJECT_ROOT   the Meltano project (include/whoop in the image)
#   MELTANO_VENV           where Meltano's venv goes; MELTANO_BIN must be its bin/meltano
#   MELTANO_DAG_SCHEDULES  comma-separated schedules (whoop-every-3h): only their plugins are installed
set -euo pipefail
: "${MELTANO_PROJECT_ROOT:?}" "${MELTANO_VENV:?}" "${MELTANO_DAG_SCHEDULES:?}"
here=$(cd "$(dirname "$0")" && pwd)

python3 -m venv "$MELTANO_VENV"
"$MELTANO_VENV/bin/pip" install --quiet --no-cache-dir "uv==$(sed -n 's/^uv==//p' "$here/meltano.txt")"
"$MELTANO_VENV/bin/uv" pip install --quiet --python "$MELTANO_VENV/bin/python" -r "$here/meltano.txt"

cd "$MELTANO_PROJECT_ROOT"
IFS=, read -ra schedules <<<"$MELTANO_DAG_SCHEDULES"
for schedule in "${schedules[@]}"; do
    "$MELTANO_VENV/bin/meltano" install --schedule "$schedule"
done
# dbt parse through the installed dbt plugin(s), then prove the DAG file will accept the result.
"$MELTANO_VENV/bin/python" orchestrate/dags/dbt_manifest.py build
"$MELTANO_VENV/bin/python" orchestrate/dags/dbt_manifest.py check
