#!/usr/bin/env bash
# Side by side on one loopback nginx: fanout load, wrk and hey — same URL, connections and duration.
# Prints req/s and client CPU µs/request (user+sys of the client process, from GNU time), then the open-loop
# rate accuracy of `fanout load --rate`. Traffic goes to 127.0.0.1 only.
#   usage: tools/compare/load-peers.sh [SECONDS] [CONNECTIONS] [RATE]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}; conns=${2:-64}; rate=${3:-5000}
url=http://127.0.0.1:18090/

need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
command -v hey >/dev/null || need+=(hey)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; fi

swift build -c release --product fanout >/dev/null
fanout=.build/release/fanout

nginx -c "$PWD/tools/compare/nginx.conf" -p /tmp &
nginx_pid=$!
trap 'kill $nginx_pid 2>/dev/null || true' EXIT
sleep 1

measure() {  # name, command… → "name req/s cpu_us"
  local name=$1; shift
  local out; out=$( { /usr/bin/time -f "TIME %U %S" "$@" ; } 2>&1 )
  local cpu; cpu=$(echo "$out" | awk '/^TIME/ {print $2 + $3}')
  local rps
  case $name in
    wrk) rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}') ;;
    hey) rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}') ;;
    *)   rps=$(echo "$out" | awk '/requests .* req\/s/ {for (i=1;i<=NF;i++) if ($i=="req/s") print $(i-1)}') ;;
  esac
  local n; n=$(python3 -c "print(float('$rps') * $secs)")
  printf "%-14s %10.0f req/s %8.1f µs/request client CPU\n" "$name" "$rps" "$(python3 -c "print($cpu / $n * 1e6)")"
}

echo "loopback nginx, ${conns} connections, ${secs} s, keep-alive"
measure "fanout load" "$fanout" load "$url" -c "$conns" -d "${secs}s" --no-progress
measure wrk wrk -t1 -c "$conns" -d "${secs}s" "$url"
measure hey hey -c "$conns" -z "${secs}s" "$url"

echo "open loop: fanout load --rate $rate for ${secs} s"
"$fanout" load "$url" --rate "$rate" -c "$conns" -d "${secs}s" --no-progress --json > /tmp/alertfanout-open.json
python3 - "$rate" <<'PY'
import json, sys
r = json.load(open("/tmp/alertfanout-open.json")); target = float(sys.argv[1])
print(f"  achieved {r['achieved_rps']:.1f} req/s for a target of {target:.0f} ({(r['achieved_rps'] / target - 1) * 100:+.2f} %), "
      f"schedule lag p99 {r['schedule_lag_us']['p99'] / 1000:.3f} ms, latency p99 {r['latency_us']['p99'] / 1000:.3f} ms, errors {r['errors']}")
PY
