#!/usr/bin/env bash
# `make demo`: the whole pipeline (tap-whoop → target-duckdb → dbt) against the offline WHOOP sandbox, then the
# report (Evidence) built from it.
#
# The demo is self-contained so it can be rerun at will and never touches your own data: it writes
# data/demo.duckdb (recreated each time), keeps Meltano's state and the sandbox's rotating tokens in a temporary
# directory, and always stops the sandbox on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=.venv/bin
DEMO_DB=${DEMO_DB:-data/demo.duckdb}
# A year and a bit of history with WHOOP's own rate limits (100 requests/minute): ~70 requests, so the paced
# extraction takes well under a minute and shows what a real backfill looks like.
DEMO_DAYS=${DEMO_DAYS:-400}

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

workdir=$(mktemp -d -t whoop-demo.XXXXXX)
sandbox_pid=
stop_sandbox() {
    if [[ -n $sandbox_pid ]] && kill -0 "$sandbox_pid" 2>/dev/null; then
        kill "$sandbox_pid" 2>/dev/null || true
        wait "$sandbox_pid" 2>/dev/null || true
    fi
    sandbox_pid=
}
cleanup() {
    stop_sandbox
    rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "Starting the WHOOP sandbox on 127.0.0.1 (1 athlete, $DEMO_DAYS days of history, WHOOP's rate limits)"
$BIN/python -m whoop_sandbox --host 127.0.0.1 --port 0 --days "$DEMO_DAYS" --seed 7 --athletes 1 \
    --credentials-out "$workdir/credentials.json" >"$workdir/sandbox.log" 2>&1 &
sandbox_pid=$!
for _ in $(seq 100); do
    [[ -s $workdir/credentials.json ]] && break
    if ! kill -0 "$sandbox_pid" 2>/dev/null; then
        cat "$workdir/sandbox.log" >&2
        echo "The sandbox exited before it was ready." >&2
        exit 1
    fi
    sleep 0.2
done
[[ -s $workdir/credentials.json ]] || { echo "The sandbox did not start within 20 s." >&2; exit 1; }

# The sandbox mints fake credentials for its athlete; hand them to the tap the way you would your own.
eval "$($BIN/python - "$workdir/credentials.json" <<'EOF'
import json, shlex, sys
creds = json.load(open(sys.argv[1]))
for key in ("api_url", "token_url", "auth_url", "client_id", "client_secret", "refresh_token"):
    print(f"export TAP_WHOOP_{key.upper()}={shlex.quote(str(creds[key]))}")
EOF
)"
echo "Sandbox API: $TAP_WHOOP_API_URL"

export TAP_WHOOP_TOKEN_STORE=$workdir/tokens.json
export TAP_WHOOP_START_DATE
TAP_WHOOP_START_DATE=$($BIN/python -c "import datetime as d, sys; print((d.datetime.now(d.UTC) - d.timedelta(days=int(sys.argv[1]) + 1)).strftime('%Y-%m-%dT00:00:00Z'))" "$DEMO_DAYS")
export MELTANO_DATABASE_URI=sqlite:///$workdir/meltano.db
export WHOOP_DUCKDB_PATH=$DEMO_DB
mkdir -p "$(dirname "$DEMO_DB")"
rm -f "$DEMO_DB" "$DEMO_DB.wal"

step "meltano run whoop-duckdb  (tap-whoop → target-duckdb → dbt-duckdb:build) into $DEMO_DB"
SECONDS=0
$BIN/meltano run whoop-duckdb
echo "Pipeline finished in ${SECONDS}s."

step "Stopping the sandbox"
# The temporary directory (Meltano's system database among it) stays until the end: the report step uses Meltano.
stop_sandbox

step "What landed"
$BIN/python scripts/show_warehouse.py "$DEMO_DB"

step "Building the report (Evidence) from $DEMO_DB into reports/build/"
SECONDS=0
WHOOP_DUCKDB_PATH=$DEMO_DB $BIN/meltano invoke evidence:build
echo "Report built in ${SECONDS}s."
cat <<EOF

The report: $PWD/reports/build/index.html
  It is a static site that reads its data over HTTP, so open it through a web server, e.g.
  $BIN/python -m http.server --bind 127.0.0.1 --directory reports/build 8000   then http://127.0.0.1:8000/

Explore it yourself:  .venv/bin/python -c "import duckdb; duckdb.connect('$DEMO_DB', read_only=True).sql('from marts.fct_daily_health').show()"
Your own WHOOP account: see README.md ("Using your own WHOOP account").
EOF
