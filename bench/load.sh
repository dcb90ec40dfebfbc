#!/usr/bin/env bash
# Locust load against an already running server (bench/locustfile.py), headless, then a short summary.
#
# Usage: bench/load.sh [URL]            (default http://127.0.0.1:8080)
# Env:   USERS (4), SPAWN_RATE (= USERS), RUN_TIME (60s; s/m/h suffixes), IMAGE (the test image),
#        LOCUST_TARGET (vigil | seed: the Python seed server), API_KEY, WAIT_S (0), V1_QUERY, LOCUST_WEIGHTS,
#        OUT_DIR (bench/results/load-<date>: Locust's CSV files and log).
# Exit status: Locust's (1 when a request failed), 2 when a tool is missing or the server does not answer.
# Only give it a URL of a server you run (127.0.0.1 by default).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
URL="${1:-http://127.0.0.1:8080}"
URL="${URL%/}"
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

probe="/health"; [ "$LOCUST_TARGET" = seed ] && probe="/"
code=$(curl -s -o /dev/null --max-time 5 -w '%{http_code}' "$URL$probe")
if [ "$code" != 200 ]; then
  echo "bench/load.sh: $URL$probe answered '$code' (000 = no answer): start the server first" >&2
  exit 2
fi

mkdir -p "$OUT" || exit 2
echo "locust: $USERS users ($LOCUST_TARGET), $RUN_TIME against $URL -> $OUT" >&2
timeout $((secs + 90)) locust -f "$here/locustfile.py" --headless -u "$USERS" -r "$SPAWN_RATE" -t "$RUN_TIME" \
  --host "$URL" --csv "$OUT/locust" --only-summary --stop-timeout 30 --loglevel WARNING \
  --logfile "$OUT/locust.log" > "$OUT/locust.out" 2>&1
rc=$?
[ $rc -eq 124 ] && echo "bench/load.sh: locust did not finish within $((secs + 90)) s; stopped" >&2

"$PY" - "$OUT" <<'PY'
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
echo "raw: $OUT/locust_stats.csv, locust_failures.csv, locust_stats_history.csv, locust.out" >&2
exit $rc
