#!/usr/bin/env bash
# need-packages.sh: install the Debian packages this project needs that the machine lacks (shared by tools/run,
# .ci/run and the compare scripts). Usage: tools/dev/need-packages.sh build|test
#   build: libcurl's, zlib's and SQLite's headers and pkg-config (what `swift build` needs);
#   test:  build's, plus the real peers the test suite runs: promtool (prometheus), Alertmanager
#          (prometheus-alertmanager) and PostgreSQL (postgresql), both started by the tests on 127.0.0.1,
#          and openssl (test certificates).
#          Nothing is started here; Debian's service units are not enabled in containers without systemd.
set -euo pipefail
mode=${1:-build}
need=()
has_header() { echo "#include <$1>" | cc -E -x c - >/dev/null 2>&1; }
has_header curl/curl.h || need+=(libcurl4-openssl-dev)
has_header zlib.h || need+=(zlib1g-dev)
has_header sqlite3.h || need+=(libsqlite3-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
if [ "$mode" = test ]; then
  command -v promtool >/dev/null 2>&1 || need+=(prometheus)
  command -v openssl >/dev/null 2>&1 || need+=(openssl)
  command -v prometheus-alertmanager >/dev/null 2>&1 || [ -x /usr/bin/prometheus-alertmanager ] || need+=(prometheus-alertmanager)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
fi
[ ${#need[@]} -eq 0 ] && exit 0
echo "installing missing Debian packages: ${need[*]}" >&2
run=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "need root (or sudo) to install: ${need[*]}" >&2; exit 1; }
  run=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${run[@]}" apt-get update -qq
"${run[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian starts its own PostgreSQL cluster on install where it can; the tests start throw-away ones instead.
if command -v pg_lsclusters >/dev/null 2>&1; then
  pg_lsclusters -h 2>/dev/null | while read -r ver name _; do "${run[@]}" pg_ctlcluster "$ver" "$name" stop >/dev/null 2>&1 || true; done
fi
