#!/usr/bin/env bash
# The prediction log's cost on the request path, side by side in one run: `vigil serve` with the log off, on,
# and on with every input image kept (--log-images 1), each under the same wrk load (raw JPEG to /v1/predict,
# concurrency C); rounds interleaved (off, on, images, off, on, images, ...) because the machine is shared.
# Reports requests/s and latency percentiles per setting, the ratio against "off", and whether every answered
# request has its row: rows in the workspace log >= 200 answers counted by wrk (0 lost rows for accepted requests;
# a few more rows than answers are the requests in flight when wrk stopped). Also the server's CPU time per
# answered request (utime + stime from /proc over the wrk run): at concurrency 4 on 2 cores the server is
# CPU-bound, so what the log adds to each request's CPU is its cost, and unlike requests/s it does not move
# when another process takes a core for a while.
#
# Usage: bench/prediction_log.sh [build-dir]   env: SECONDS_PER_RUN (20), ROUNDS (3), CONCURRENCY (4), THREADS,
#        MODEL (mask_small_cnn: the worst case, where the request is mostly decoding; or e.g. mobilenet_v2),
#        MODES (default "off on images"; "off on" for the log's cost alone)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
build="${1:-$repo/build}"
secs="${SECONDS_PER_RUN:-20}"
rounds="${ROUNDS:-3}"
conc="${CONCURRENCY:-4}"
THREADS="${THREADS:-$(nproc)}"
# shellcheck source=bench/local_server.sh
source "$here/local_server.sh"

# The served model: by default the mask seed's small CNN on 100x100 inputs (seeded weights), so the request path
# (decode, statistics, logging) is a large share of each request and the log's cost shows rather than hides.
arch="${MODEL:-mask_small_cnn}"
prepare_served_model "$arch"

# utime + stime of a process, in clock ticks (proc(5): fields 14 and 15; the name in field 2 has no spaces).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

results="$work/results.jsonl"
: >"$results"
for ((round = 1; round <= rounds; round++)); do
  for mode in ${MODES:-off on images}; do
    ws="$work/ws-$mode-$round"
    args=(--set prediction_log=false)
    [[ $mode == on ]] && args=()
    [[ $mode == images ]] && args=(--log-images 1)
    start_server "$work/serve-$mode.log" --workspace "$ws" --threads "$THREADS" --log-level warn serve \
      --model "$work/mask.vgm" "${args[@]}"
    echo "== round $round, log $mode: wrk -c$conc -d${secs}s" >&2
    cpu_before="$(cpu_ticks "$server_pid")"
    out="$(IMAGE="$work/img.jpg" EXPECT_TYPE=application/json wrk -t2 -c"$conc" -d"${secs}s" --timeout 60s \
      -s "$here/wrk_raw.lua" "http://127.0.0.1:$port/v1/predict" | grep '^WRKJSON' | sed 's/^WRKJSON //')"
    cpu_after="$(cpu_ticks "$server_pid")"
    kill -TERM "$server_pid"
    wait "$server_pid" || true  # a graceful stop writes every queued row before it exits
    server_pid=""
    rows=0
    if [[ $mode != off ]]; then rows="$(sqlite3 "$ws/vigil.db" 'SELECT count(*) FROM predictions')"; fi
    images=0
    [[ $mode == images ]] && images="$(find "$ws/predictions" -name '*.jpg' | wc -l)"
    printf '{"mode": "%s", "round": %d, "rows": %s, "images": %s, "cpu_s": %s, "wrk": %s}\n' "$mode" "$round" \
      "$rows" "$images" "$(awk -v a="$cpu_before" -v b="$cpu_after" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.3f", (b - a) / hz }')" "$out" >>"$results"
  done
done

/usr/bin/python3 - "$results" "$conc" "$THREADS" "$arch" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"\nprediction log cost: {sys.argv[4]}, raw 640x480 JPEG to /v1/predict, concurrency {sys.argv[2]}, "
      f"threads {sys.argv[3]}; median over rounds")
head = (f"{'log':7} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'vs off':>7} {'cpu ms/req':>10} {'answered':>9} "
        f"{'rows':>8} {'lost':>5}")
print(head)
print("-" * len(head))
base = None
for mode in ("off", "on", "images"):
    rs = [r for r in rows if r["mode"] == mode]
    if not rs:
        continue
    rps = statistics.median(r["wrk"]["rps"] for r in rs)
    p50 = statistics.median(r["wrk"]["lat_p50_ms"] for r in rs)
    p99 = statistics.median(r["wrk"]["lat_p99_ms"] for r in rs)
    answered = sum(r["wrk"]["statuses"].get("200", 0) for r in rs)
    cpu = statistics.median(1000 * r["cpu_s"] / max(1, r["wrk"]["statuses"].get("200", 0)) for r in rs)
    logged = sum(r["rows"] for r in rs)
    base = base or rps
    # wrk stops with requests in flight: the server answered (and logged) them, wrk did not count them.
    lost = "-" if mode == "off" else str(max(0, answered - logged))
    print(f"{mode:7} {rps:8.1f} {p50:7.2f} {p99:7.2f} {rps / base:7.3f} {cpu:10.3f} {answered:9d} "
          f"{logged if mode != 'off' else '-':>8} {lost:>5}")
# Paired by round: each "on" run against the "off" run just before it, so a slow minute of the shared machine
# lands on both sides of a ratio instead of between medians.
by_round = {}
for r in rows:
    w = dict(r["wrk"])
    w["cpu"] = r["cpu_s"] / max(1, w["statuses"].get("200", 0))
    by_round.setdefault(r["round"], {})[r["mode"]] = w
for mode in ("on", "images"):
    ratios = sorted(v[mode]["rps"] / v["off"]["rps"] for v in by_round.values() if mode in v and "off" in v)
    p50s = sorted(v[mode]["lat_p50_ms"] / v["off"]["lat_p50_ms"] for v in by_round.values() if mode in v and "off" in v)
    cpus = sorted((v[mode]["cpu"] / v["off"]["cpu"]) for v in by_round.values() if mode in v and "off" in v)
    if ratios:
        print(f"{mode} / off per round: CPU per request median {statistics.median(cpus):.3f} "
              f"(min {cpus[0]:.3f}, max {cpus[-1]:.3f})")
        print(f"{mode} / off per round: requests/s median {statistics.median(ratios):.3f} "
              f"(min {ratios[0]:.3f}, max {ratios[-1]:.3f}), p50 latency median {statistics.median(p50s):.3f} "
              f"over {len(ratios)} rounds")
PY
