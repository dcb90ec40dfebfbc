#!/usr/bin/env bash
# Locust load against an already running server (bench/locustfile.py), headless, then a short summary; or, with
# --compare, one `vigil serve` instance against two behind nginx, side by side.
#
# Usage: bench/load.sh [URL]            (default http://127.0.0.1:8080)
#        bench/load.sh --compare MODEL  starts `vigil serve --model MODEL` (a file or NAME@alias of WORKSPACE) once
#                                       alone, then twice behind nginx (deploy/nginx/nginx.conf with its upstream
#                                       file listing the two), runs the same Locust load against each and prints
#                                       req/s, p50, p95 and failures of both with their ratio. Each side gets its
#                                       own copy of WORKSPACE (so the prediction log starts equal; a copy of
#                                       the whole folder, so use a small workspace); the single
#                                       instance has every core, each replica half of them.
# Env:   USERS (4), SPAWN_RATE (= USERS), RUN_TIME (60s; s/m/h suffixes), IMAGE (the test image),
#        LOCUST_TARGET (vigil | seed: the Python seed server | accident: the accident seed's users), API_KEY,
#        WAIT_S (0), V1_QUERY, LOCUST_WEIGHTS, ACCIDENT_DATA, ACCIDENT_FRAMES, UPLOAD_WAIT_S (see locustfile.py),
#        OUT_DIR (bench/results/load-<date>: Locust's CSV files and log).
#        --compare: WORKSPACE (./.vigil), VIGIL (build/apps/vigil/vigil), NGINX (/usr/sbin/nginx),
#        SERVE_ARGS (more `vigil serve` flags for every instance).
# Exit status: Locust's (1 when a request failed), 2 when a tool is missing or the server does not answer.
# Only give it a URL of a server you run (127.0.0.1 by default).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
COMPARE=""
if [ "${1:-}" = "--compare" ]; then
  COMPARE="${2:-}"
  [ -n "$COMPARE" ] || { echo "bench/load.sh: --compare needs a MODEL (a file or NAME@alias)" >&2; exit 2; }
  URL=""
else
  URL="${1:-http://127.0.0.1:8080}"
  URL="${URL%/}"
fi
USERS="${USERS:-4}"
SPAWN_RATE="${SPAWN_RATE:-$USERS}"
RUN_TIME="${RUN_TIME:-60s}"
export LOCUST_TARGET="${LOCUST_TARGET:-vigil}"
OUT="${OUT_DIR:-$here/results/load-$(date +%Y%m%d-%H%M%S)}"
PY=/usr/bin/python3

missing=()
command -v locust >/dev/null 2>&1 || missing+=("locust (apt package python3-locust)")
command -v curl >/dev/null 2>&1 || missing+=("curl (apt package curl)")
[ -x "$PY" ] || missing+=("$PY (apt package python3)")
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench/load.sh: missing:" >&2; printf '  - %s\n' "${missing[@]}" >&2
  echo "  (scripts/install-deps.sh installs them)" >&2
  exit 2
fi

case "$RUN_TIME" in
  *h) secs=$(( ${RUN_TIME%h} * 3600 )) ;;
  *m) secs=$(( ${RUN_TIME%m} * 60 )) ;;
  *s) secs=${RUN_TIME%s} ;;
  *) secs=$RUN_TIME; RUN_TIME="${RUN_TIME}s" ;;
esac

# run_locust URL OUT: checks that URL answers, runs Locust into OUT, prints the summary; returns Locust's status.
run_locust() {
  local url="$1" out="$2" probe="/health" code rc
  [ "$LOCUST_TARGET" = seed ] && probe="/"
  code=$(curl -s -o /dev/null --max-time 5 -w '%{http_code}' "$url$probe")
  if [ "$code" != 200 ]; then
    echo "bench/load.sh: $url$probe answered '$code' (000 = no answer): start the server first" >&2
    return 2
  fi
  mkdir -p "$out" || return 2
  echo "locust: $USERS users ($LOCUST_TARGET), $RUN_TIME against $url -> $out" >&2
  timeout $((secs + 90)) locust -f "$here/locustfile.py" --headless -u "$USERS" -r "$SPAWN_RATE" -t "$RUN_TIME" \
    --host "$url" --csv "$out/locust" --only-summary --stop-timeout 30 --loglevel WARNING \
    --logfile "$out/locust.log" > "$out/locust.out" 2>&1
  rc=$?
  [ $rc -eq 124 ] && echo "bench/load.sh: locust did not finish within $((secs + 90)) s; stopped" >&2
  summary "$out"
  echo "raw: $out/locust_stats.csv, locust_failures.csv, locust_stats_history.csv, locust.out" >&2
  return $rc
}

summary() {
  "$PY" - "$1" <<'PY'
import csv, os, sys
out = sys.argv[1]
path = os.path.join(out, "locust_stats.csv")
if not os.path.exists(path):
    print(f"no {path}; see {out}/locust.out:")
    print(open(os.path.join(out, "locust.out")).read()[-2000:])
    sys.exit(0)
rows = list(csv.DictReader(open(path)))
head = f"{'request':32} {'count':>7} {'fail':>5} {'req/s':>7} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}  (ms)"
print(head)
print("-" * len(head))
for r in rows:
    name = (r["Name"] if r["Name"] != "Aggregated" else "TOTAL")
    print(f"{name:32} {int(r['Request Count']):7d} {int(r['Failure Count']):5d} {float(r['Requests/s']):7.2f} "
          f"{r['50%']:>7} {r['95%']:>7} {r['99%']:>7} {float(r['Max Response Time']):7.0f}")
fpath = os.path.join(out, "locust_failures.csv")
fails = list(csv.DictReader(open(fpath))) if os.path.exists(fpath) else []
if fails:
    print("\nfailures:")
    for f in fails:
        print(f"  {f['Occurrences']:>5} x {f['Method']} {f['Name']}: {f['Error'][:300]}")
else:
    print("\nno failed requests")
PY
}

if [ -z "$COMPARE" ]; then
  run_locust "$URL" "$OUT"
  exit $?
fi
# ---- --compare MODEL: one instance, then two behind nginx ---------------------------------------------------
VIGIL="${VIGIL:-$here/../build/apps/vigil/vigil}"
NGINX="${NGINX:-/usr/sbin/nginx}"
WORKSPACE="${WORKSPACE:-./.vigil}"
[ -x "$VIGIL" ] || { echo "bench/load.sh: no vigil binary at $VIGIL (build it, or set VIGIL)" >&2; exit 2; }
[ -x "$NGINX" ] || { echo "bench/load.sh: no nginx at $NGINX (apt package nginx, or set NGINX)" >&2; exit 2; }
[ -d "$WORKSPACE" ] || { echo "bench/load.sh: no workspace $WORKSPACE (set WORKSPACE)" >&2; exit 2; }
cores=$(nproc)
half=$(( cores / 2 > 0 ? cores / 2 : 1 ))
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  pids=()
}
trap cleanup EXIT

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start_vigil DIR WORKSPACE THREADS: `vigil serve` on a free port, which it leaves in $started (not run in a
# subshell, so that its pid stays in pids for cleanup).
start_vigil() {
  local dir="$1" ws="$2" threads="$3" i
  mkdir -p "$dir"
  rm -f "$dir/port"
  # shellcheck disable=SC2086
  "$VIGIL" --workspace "$ws" serve --model "$COMPARE" --port 0 --port-file "$dir/port" \
    --threads-per-instance "$threads" --follow-alias-s 0 ${SERVE_ARGS:-} > "$dir/server.log" 2>&1 < /dev/null &
  pids+=($!)
  for i in $(seq 1 600); do
    [ -s "$dir/port" ] && { started=$(cat "$dir/port"); return 0; }
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "bench/load.sh: vigil serve did not start; see $dir/server.log:" >&2
  tail -5 "$dir/server.log" >&2
  return 1
}

# start_nginx DIR PORT...: deploy/nginx/nginx.conf on a free loopback port (left in $started) with an upstream
# of PORTs.
start_nginx() {
  local dir="$1" port p i
  shift
  mkdir -p "$dir/logs"
  port=$(free_port)
  sed "s/listen 8080;/listen 127.0.0.1:$port;/" "$here/../deploy/nginx/nginx.conf" > "$dir/nginx.conf"
  { echo "upstream vigil {"; echo "  least_conn;"
    for p in "$@"; do echo "  server 127.0.0.1:$p max_fails=1 fail_timeout=10s;"; done
    echo "  keepalive 32;"; echo "}"; } > "$dir/vigil-upstream.conf"
  "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e stderr -g "daemon off; pid $dir/nginx.pid;" \
    > "$dir/nginx.log" 2>&1 < /dev/null &
  pids+=($!)
  for i in $(seq 1 100); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/health" && { started=$port; return 0; }
    sleep 0.1
  done
  echo "bench/load.sh: nginx did not start; see $dir/nginx.log" >&2
  return 1
}

mkdir -p "$OUT" || exit 2
echo "compare: $COMPARE from $WORKSPACE, $USERS users ($LOCUST_TARGET), $RUN_TIME per side -> $OUT" >&2
cp -a "$WORKSPACE" "$OUT/ws-one" && cp -a "$WORKSPACE" "$OUT/ws-two" || exit 2

start_vigil "$OUT/one/server" "$OUT/ws-one" "$cores" || exit 2
port=$started
echo "== one instance (port $port, $cores threads)" >&2
run_locust "http://127.0.0.1:$port" "$OUT/one"
rc1=$?
cleanup

start_vigil "$OUT/two/server-1" "$OUT/ws-two" "$half" || exit 2
p1=$started
start_vigil "$OUT/two/server-2" "$OUT/ws-two" "$half" || exit 2
p2=$started
start_nginx "$OUT/two/nginx" "$p1" "$p2" || exit 2
nport=$started
echo "== two instances behind nginx (port $nport -> $p1, $p2; $half threads each)" >&2
run_locust "http://127.0.0.1:$nport" "$OUT/two"
rc2=$?
cleanup

"$PY" - "$OUT/one" "$OUT/two" <<'PY'
import csv, os, sys

def rows(out):
    path = os.path.join(out, "locust_stats.csv")
    return {r["Name"]: r for r in csv.DictReader(open(path))} if os.path.exists(path) else {}

one, two = rows(sys.argv[1]), rows(sys.argv[2])
names = [n for n in one if n != "Aggregated"] + [n for n in two if n not in one and n != "Aggregated"]
names.append("Aggregated")
print()
print(f"{'':32} {'---- one instance ----':>30}   {'---- two behind nginx ----':>30}")
head = (f"{'request':32} {'req/s':>7} {'p50':>6} {'p95':>6} {'fail':>6}   {'req/s':>7} {'p50':>6} {'p95':>6} "
        f"{'fail':>6}   {'req/s two/one':>13}")
print(head)
print("-" * len(head))

def cells(r):
    if not r:
        return f"{'-':>7} {'-':>6} {'-':>6} {'-':>6}"
    return (f"{float(r['Requests/s']):7.2f} {r['50%']:>6} {r['95%']:>6} "
            f"{int(r['Failure Count']):>6}")

for n in names:
    a, b = one.get(n), two.get(n)
    ratio = (float(b["Requests/s"]) / float(a["Requests/s"])
             if a and b and float(a["Requests/s"]) > 0 else float("nan"))
    label = "TOTAL" if n == "Aggregated" else n
    print(f"{label:32} {cells(a)}   {cells(b)}   {ratio:13.2f}")
print("(latencies in ms; p50/p95 from Locust's CSV)")
PY
[ $rc1 -ne 0 ] && exit $rc1
exit $rc2
