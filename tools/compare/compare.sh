#!/usr/bin/env bash
# One command for the side-by-side comparisons: installs what is missing from Debian, builds every peer, and
# runs compare.py (throughput table with ratios to `fanout load`, idle cost, fan-out overhead, connection churn).
#   usage: tools/compare/compare.sh [--quick]      (--quick: 3 s runs, under 5 minutes once built)
# All traffic goes to 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."
need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
command -v hey >/dev/null || need+=(hey)
[ -x /usr/bin/time ] || need+=(time)
echo '#include <curl/curl.h>' | cc -E -x c - >/dev/null 2>&1 || need+=(libcurl4-openssl-dev)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
echo "building peers (release; AsyncHTTPClient takes several minutes the first time)…" >&2
swift build -c release --product fanout >/dev/null
swift build -c release --product mock-target >/dev/null
mkdir -p .build/compare
cc -O2 -o .build/compare/curl_multi_socket tools/compare/c/curl_multi_socket.c -lcurl
cc -O2 -o .build/compare/curl_multi_perform tools/compare/c/curl_multi_perform.c -lcurl
(cd tools/compare/urlsession && swift build -c release >/dev/null)
(cd tools/compare/ahc && swift build -c release >/dev/null)
exec python3 tools/compare/compare.py "$@"
