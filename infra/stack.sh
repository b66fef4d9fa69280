#!/usr/bin/env bash
# The Lepton team stack on one machine, without Docker:
#   PostgreSQL (local service): Prefect's database and Lepton's registry
#   S3: moto's server on loopback (use MinIO or AWS S3 for real: infra/README.md)
#   Prefect server (API + UI) on PostgreSQL, a process work pool, N workers
#   a Lepton workspace (lepton.toml -> S3 store + PostgreSQL registry)
#
#   bash infra/stack.sh up [WORKERS]   # start everything; prints the env to source
#   source infra/.run/env              # PREFECT_API_URL, AWS_*, LEPTON_WORKSPACE ...
#   bash infra/stack.sh deploy         # register deployments/prefect.yaml
#   bash infra/stack.sh status
#   bash infra/stack.sh down
#
# Settings (environment): PG_URL (postgresql://postgres@127.0.0.1:5432),
# PREFECT_PORT (4200), S3_PORT (5555), LEPTON_WORKSPACE (infra/.run/workspace),
# LEPTON_EXAMPLE (digits), PY (the project's .venv/bin/python, else python3).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
run="$here/.run"
PY=${PY:-$( [ -x "$root/.venv/bin/python" ] && echo "$root/.venv/bin/python" || echo python3 )}
bin=$(dirname "$PY")
PG_URL=${PG_URL:-postgresql://postgres@127.0.0.1:5432}
PREFECT_PORT=${PREFECT_PORT:-4200}
S3_PORT=${S3_PORT:-5555}
WORKSPACE=${LEPTON_WORKSPACE:-$run/workspace}
EXAMPLE=${LEPTON_EXAMPLE:-digits}
mkdir -p "$run"

log() { printf '[stack] %s\n' "$*"; }
alive() { [ -f "$run/$1.pid" ] && kill -0 "$(cat "$run/$1.pid")" 2>/dev/null; }
start() {  # name, command...: run in the background, log to .run/NAME.log
  local name=$1; shift
  if alive "$name"; then log "$name already running (pid $(cat "$run/$name.pid"))"; return; fi
  nohup "$@" >"$run/$name.log" 2>&1 &
  echo $! >"$run/$name.pid"
  log "$name started (pid $!, log $run/$name.log)"
}
wait_http() {  # url, what, seconds
  for _ in $(seq "$3"); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 1; done
  log "$2 did not answer at $1 within $3 s; see $run/*.log"; return 1
}
psql_do() { psql "$PG_URL/postgres" -v ON_ERROR_STOP=1 -qtAc "$1"; }
ensure_db() {
  [ "$(psql_do "SELECT 1 FROM pg_database WHERE datname = '$1'")" = 1 ] || psql_do "CREATE DATABASE \"$1\""
}

write_env() {
  cat >"$run/env" <<EOF
export PREFECT_API_URL=http://127.0.0.1:$PREFECT_PORT/api
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL=http://127.0.0.1:$S3_PORT
export LEPTON_WORKSPACE=$WORKSPACE
export LEPTON_DATASET=$EXAMPLE-features
export PATH=$bin:\$PATH
EOF
}

up() {
  local workers=${1:-2}
  pg_isready -h 127.0.0.1 -p 5432 -q || pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
  ensure_db prefect && ensure_db lepton
  write_env && source "$run/env"

  start s3 "$bin/moto_server" -H 127.0.0.1 -p "$S3_PORT"
  wait_http "http://127.0.0.1:$S3_PORT/moto-api/" "S3 (moto)" 30
  "$PY" - <<EOF
import boto3
s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:$S3_PORT")
if "lepton" not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
    s3.create_bucket(Bucket="lepton")
EOF

  PREFECT_API_DATABASE_CONNECTION_URL="${PG_URL/postgresql:/postgresql+asyncpg:}/prefect" \
  PREFECT_UI_API_URL="http://127.0.0.1:$PREFECT_PORT/api" PREFECT_SERVER_API_PORT="$PREFECT_PORT" \
    start prefect-server "$bin/prefect" server start --host 127.0.0.1 --port "$PREFECT_PORT"
  wait_http "http://127.0.0.1:$PREFECT_PORT/api/health" "Prefect server" 90
  "$bin/prefect" work-pool inspect lepton >/dev/null 2>&1 \
    || "$bin/prefect" work-pool create lepton --type process >/dev/null
  for i in $(seq "$workers"); do
    start "worker-$i" "$bin/prefect" worker start --pool lepton --type process --name "worker-$i"
  done

  if [ ! -f "$WORKSPACE/lepton.toml" ]; then
    mkdir -p "$WORKSPACE"
    (cd "$WORKSPACE" && "$PY" "$root/examples/prepare.py" "$EXAMPLE" data >/dev/null \
      && cp "$root/examples/$EXAMPLE/project.toml" project.toml \
      && "$bin/lepton" init --store s3://lepton/store --registry "$PG_URL/lepton" \
      && printf '\n[s3]\nendpoint_url = "http://127.0.0.1:%s"\n' "$S3_PORT" >>lepton.toml)
  fi
  log "up: UI http://127.0.0.1:$PREFECT_PORT, S3 http://127.0.0.1:$S3_PORT, workspace $WORKSPACE"
  log "next: source $run/env && bash infra/stack.sh deploy"
}

deploy() {
  source "$run/env"
  (cd "$root" && "$bin/prefect" --no-prompt deploy --all --prefect-file deployments/prefect.yaml)
}

status() {
  for f in "$run"/*.pid; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .pid)
    if alive "$name"; then log "$name: running (pid $(cat "$f"))"; else log "$name: stopped"; fi
  done
}

down() {
  for f in "$run"/*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null && log "stopped $(basename "$f" .pid)"
    rm -f "$f"
  done
}

case "${1:-}" in
  up) up "${2:-2}" ;;
  deploy) deploy ;;
  status) status ;;
  down) down ;;
  *) sed -n '2,16p' "$0"; exit 2 ;;
esac
