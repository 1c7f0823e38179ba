#!/usr/bin/env bash
# Load-tests authenticated GET /api/me from a separate process (wrk) on
# loopback against a real server, PostgreSQL and Temporal. Run through
# `make bench-api`, which provides DATABASE_URL and TEMPORAL_ADDRESS.
# Needs wrk (apt-get install wrk). Every loop here is bounded in time.
set -euo pipefail
: "${DATABASE_URL:?run through make bench-api}"
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-16}
command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install wrk" >&2; exit 1; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export LISTEN_ADDR=127.0.0.1:$port JWT_SECRET=bench-secret-0123456789abcdef0123456789 \
  BOOTSTRAP_ADMIN_PASSWORD='bench admin password' RATE_LIMIT_ADMIN=100000000 LOG_LEVEL=error
bin/streamspace migrate up >/dev/null
bin/streamspace server 2>/tmp/bench-api-server.log &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://$LISTEN_ADDR/healthz" >/dev/null && break; sleep 0.1; done

token=$(curl -sf -X POST "http://$LISTEN_ADDR/api/auth/login" \
  -d '{"username":"admin","password":"bench admin password"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
echo "== GET /api/me, $CONNECTIONS connections, $DURATION, 2 threads"
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: Bearer $token" "http://$LISTEN_ADDR/api/me"
echo "== server RSS: $(ps -o rss= -p $server) KiB"
