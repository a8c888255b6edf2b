#!/usr/bin/env bash
# serve-load.sh: how many alerts/s a release `fanout serve` accepts on /webhook and delivers to 5 loopback webhook
# targets, per store. Every request carries a distinct alert (wrk + Lua), so nothing is superseded.
#   usage: tools/compare/serve-load.sh [none|sqlite|postgres|all] [seconds] [connections]
#   ALERTS=N alerts per notification (default 1; Alertmanager sends a group's alerts together, so 10-100 is common
#   under load); alerts/s is notifications/s times N.
#   PG_STATS=1 loads pg_stat_statements and prints, after the PostgreSQL run, the statements by total server time
#   (calls, execution and planning ms), to see where the database's CPU goes.
#   TARGETS=nginx (default: one loopback nginx worker answering 200 on 5 ports, so the targets take little of the
#   two cores) or TARGETS=mock (5 MockTarget processes, as the tests use).
# Prints, per store: accepted alerts/s and 2xx share (wrk), p50/p99 accept latency, and the seconds from the
# last accept until the outbox's pending count reaches 0. Loopback only; every process is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
which=${1:-all}; secs=${2:-10}; conns=${3:-32}; per=${ALERTS:-1}
[[ "$per" =~ ^[1-9][0-9]*$ ]] || { echo "ALERTS must be a positive count" >&2; exit 2; }
targets=${TARGETS:-nginx}
need=()
command -v wrk >/dev/null || need+=(wrk)
[ "$targets" = nginx ] && { command -v nginx >/dev/null || need+=(nginx-light); }
[ ${#need[@]} -eq 0 ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; }
tools/dev/need-packages.sh test
swift build -c release --product fanout >/dev/null
swift build -c release --product mock-target >/dev/null
bin=.build/release
work=$(mktemp -d /tmp/serve-load.XXXX); chmod 755 "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; [ -n "${pgdir:-}" ] && runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdir/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
echo "targets ($targets):" >&2
echo "targets:" > "$work/c.yaml"
if [ "$targets" = nginx ]; then
  { echo "worker_processes 1; daemon off; error_log stderr error; pid $work/nginx.pid; events { worker_connections 4096; }"
    echo "http { access_log off; keepalive_requests 1000000; keepalive_timeout 120s; client_body_temp_path $work;"
    for i in 1 2 3 4 5; do echo "  server { listen 127.0.0.1:$((19100 + i)); location / { return 200 'ok'; } }"; done
    echo "}"; } > "$work/nginx.conf"
  nginx -c "$work/nginx.conf" -p "$work" & pids+=($!)
else
  for i in 1 2 3 4 5; do "$bin/mock-target" --port $((19100 + i)) --no-record >/dev/null 2>&1 & pids+=($!); done
fi
for i in 1 2 3 4 5; do echo "  - {name: hook$i, type: webhook, url: 'http://127.0.0.1:$((19100 + i))/hook'}" >> "$work/c.yaml"; done
for _ in $(seq 50); do curl -s -o /dev/null -X POST -d x http://127.0.0.1:19105/hook && break; sleep 0.1; done
cat > "$work/alerts.lua" <<LUA
local n = 0
local per = $per
local tag = nil
request = function()
  -- Seeded on first use, per wrk thread (each thread has its own Lua state and must not repeat another's alerts).
  if tag == nil then
    math.randomseed(os.time() + math.floor(os.clock() * 1000000) + tonumber(tostring({}):match("0x(%x+)"), 16) % 1000003)
    tag = tostring(math.random(1, 1000000000))
  end
  local parts = {}
  for i = 1, per do
    n = n + 1
    parts[i] = '{"labels":{"alertname":"Load' .. tag .. '-' .. n .. '","instance":"i' .. n .. '"},"startsAt":"2024-05-01T12:00:00Z"}'
  end
  return wrk.format("POST", "/webhook", {["Content-Type"] = "application/json"}, '{"version":"4","status":"firing","alerts":[' .. table.concat(parts, ",") .. ']}')
end
LUA
run() {
  local name=$1 store=$2
  "$bin/fanout" serve --config "$work/c.yaml" --listen 127.0.0.1:19095 --store "$store" --log-level error & local spid=$!
  pids+=($spid)
  for _ in $(seq 100); do curl -sf http://127.0.0.1:19095/-/ready >/dev/null && break; sleep 0.1; done
  local out; out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$work/alerts.lua" http://127.0.0.1:19095/webhook)
  local t0; t0=$(date +%s.%N)
  if [ "$store" != none ]; then
    for _ in $(seq 1200); do
      p=$(curl -s http://127.0.0.1:19095/api/v2/publishing/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["deliveries"]["pending"])')
      [ "$p" = 0 ] && break; sleep 0.1
    done
  fi
  local drain; drain=$(python3 -c "import time; print(round(time.time() - $t0, 2))")
  local stats; stats=$(curl -s http://127.0.0.1:19095/api/v2/publishing/stats)
  kill -TERM $spid; wait $spid 2>/dev/null || true
  if [ "$name" = postgres ] && [ -n "${PG_STATS:-}" ]; then
    "$pgbin/psql" -h 127.0.0.1 -p 19432 -U postgres -d fanout -P pager=off -c "SELECT calls, round(total_exec_time) AS exec_ms,
      round(total_plan_time) AS plan_ms, rows, left(regexp_replace(query, '\s+', ' ', 'g'), 110) AS query
      FROM pg_stat_statements ORDER BY total_exec_time + total_plan_time DESC LIMIT 15" >&2
  fi
  python3 - "$name" "$drain" "$stats" "$per" <<PY
import re, sys, json
name, drain, stats, per = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4])
out = """$out"""
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
total = int(re.search(r"(\d+) requests in", out).group(1))
non2xx = int(re.search(r"Non-2xx or 3xx responses: (\d+)", out).group(1)) if "Non-2xx" in out else 0
def ms(label):
    m = re.search(r"\s%s\s+([\d.]+)(us|ms|s)" % label, out)
    v = float(m.group(1)); return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
d = stats["deliveries"]
print(f"{name:9} accepted {rps * per:8.0f} alerts/s ({per}/notification)  2xx {100 * (total - non2xx) / max(total, 1):6.2f} %  p50 {ms('50%'):7.2f} ms  p99 {ms('99%'):7.2f} ms  "
      f"delivered {d['delivered']} dead {d['dead']} pending {d['pending']}  drained {drain} s after the last accept")
PY
}
[ "$which" = none ] || [ "$which" = all ] && run none none
[ "$which" = sqlite ] || [ "$which" = all ] && run sqlite "sqlite:$work/outbox.db"
if [ "$which" = postgres ] || [ "$which" = all ]; then
  pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1); pgdir="$work/pg"; mkdir -p "$pgdir"; chown postgres:postgres "$pgdir"
  runuser -u postgres -- "$pgbin/initdb" -D "$pgdir/data" -A trust -U postgres --no-locale --no-instructions >/dev/null
  runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/log" -w -o "-p 19432 -k $pgdir -c listen_addresses=127.0.0.1 ${PG_STATS:+-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track_planning=on}" start >/dev/null
  "$pgbin/psql" -h 127.0.0.1 -p 19432 -U postgres -qc 'CREATE DATABASE fanout'
  [ -z "${PG_STATS:-}" ] || "$pgbin/psql" -h 127.0.0.1 -p 19432 -U postgres -d fanout -qc 'CREATE EXTENSION pg_stat_statements'
  run postgres "postgres://postgres@127.0.0.1:19432/fanout?sslmode=disable"
fi
