#!/usr/bin/env bash
# Bounded soak of `vigil serve`: steady load for SOAK_SECONDS, the server's memory sampled every SAMPLE_S seconds,
# and a verdict on growth.
#
#   1. model: MODEL (any file `vigil serve --model` takes), else the seeds' weights for ARCH written by
#      bench/seed_weights.py (needs /usr/bin/python3 with torch, torchvision, fastapi);
#   2. starts vigil serve on 127.0.0.1:PORT (--port-file), waits for /ready, warms up;
#   3. load: wrk with CONC connections (LOAD_TOOL=wrk, default; bench/wrk_mix.lua = every route incl. batch,
#      annotate, stats, metrics and a deliberately bad image, or MIX=0 for /v1/predict multipart only), or
#      LOAD_TOOL=locust (bench/locustfile.py, CONC users);
#   4. every SAMPLE_S s: VmRSS, VmHWM, threads, open fds, CPU ticks from /proc/PID, and
#      process_resident_memory_bytes from GET /metrics (cross-check) -> RESULTS_DIR/samples.csv;
#   5. report: first / last / max RSS, least-squares slope (MiB/min) of VmRSS and of the /metrics value over the
#      samples after the warm-up part (WARMUP_FRACTION of the run, default the first half), fds and threads at
#      start and end; a PNG plot when python3-matplotlib or gnuplot is installed (skipped otherwise);
#   6. exit 1 when the VmRSS slope exceeds SLOPE_MAX MiB/min (default 1), or the server died, or a request failed
#      unexpectedly, or the server did not exit 0 on SIGTERM; 2 on a missing tool or a start-up failure.
#
# Usage: bench/soak.sh [vigil-binary]          (default build/apps/vigil/vigil)
# Env:   SOAK_SECONDS (600), CONC (3; 2-4 recommended on 2 cores), SAMPLE_S (5), ARCH
#        (fasterrcnn_mobilenet_v3_large_320_fpn), MODEL (a .pth/.pt gets --arch ARCH --num-classes NUM_CLASSES=2),
#        PORT (18090), IMAGE, VIGIL_ARGS, VIGIL_GLOBAL_ARGS,
#        THREADS (2), SLOPE_MAX (1.0), WARMUP_FRACTION (0.5), LOAD_TOOL (wrk|locust), MIX (1), MIX_BAD (1),
#        RESULTS_DIR (bench/results/soak-<date>), REQ_TIMEOUT (60), STARTUP_TIMEOUT (180), COPY_BINARY (1).
# Traffic goes to 127.0.0.1 only; everything is bounded in time; the server is stopped by PID on exit.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
PY=/usr/bin/python3
HOST=127.0.0.1
VIGIL_BIN="${1:-$repo/build/apps/vigil/vigil}"
SOAK_SECONDS="${SOAK_SECONDS:-600}"
CONC="${CONC:-3}"
SAMPLE_S="${SAMPLE_S:-5}"
ARCH="${ARCH:-fasterrcnn_mobilenet_v3_large_320_fpn}"
MODEL="${MODEL:-}"
PORT="${PORT:-18090}"
VIGIL_ARGS="${VIGIL_ARGS:-}"
VIGIL_GLOBAL_ARGS="${VIGIL_GLOBAL_ARGS:-}"
THREADS="${THREADS:-2}"
SLOPE_MAX="${SLOPE_MAX:-1.0}"
WARMUP_FRACTION="${WARMUP_FRACTION:-0.5}"
LOAD_TOOL="${LOAD_TOOL:-wrk}"
MIX="${MIX:-1}"
export MIX_BAD="${MIX_BAD:-1}"
REQ_TIMEOUT="${REQ_TIMEOUT:-60}"
STARTUP_TIMEOUT="${STARTUP_TIMEOUT:-180}"
COPY_BINARY="${COPY_BINARY:-1}"
RES="${RESULTS_DIR:-$here/results/soak-$(date +%Y%m%d-%H%M%S)}"
BASE="http://$HOST:$PORT"
source "$here/serve_common.sh"

# ---- tools ------------------------------------------------------------------------------------------------------
missing=()
command -v curl >/dev/null 2>&1 || missing+=("curl (apt package curl)")
[ -x "$PY" ] || missing+=("$PY (apt package python3)")
case "$LOAD_TOOL" in
  wrk) command -v wrk >/dev/null 2>&1 || missing+=("wrk (apt package wrk)") ;;
  locust) command -v locust >/dev/null 2>&1 || missing+=("locust (apt package python3-locust)") ;;
  *) missing+=("LOAD_TOOL must be wrk or locust, not '$LOAD_TOOL'") ;;
esac
if [ -z "$MODEL" ] && [ -x "$PY" ]; then
  for m in torch:python3-torch torchvision:python3-torchvision fastapi:python3-fastapi multipart:python3-multipart; do
    "$PY" -c "import ${m%%:*}" >/dev/null 2>&1 || missing+=("python module ${m%%:*} for $PY (apt package ${m#*:}; or set MODEL=a model file)")
  done
  [ -f "$BASELINE_DIR/seed_server.py" ] || missing+=("$BASELINE_DIR/seed_server.py (set BASELINE_DIR, or MODEL)")
fi
if [ ! -x "$VIGIL_BIN" ]; then
  missing+=("vigil binary $VIGIL_BIN (build it, or pass its path as the first argument)")
elif [[ "$(timeout 30 "$VIGIL_BIN" serve --help 2>&1)" != *--port-file* ]]; then
  missing+=("'$VIGIL_BIN serve' (this build has no serve subcommand yet)")
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench/soak.sh: missing:" >&2; printf '  - %s\n' "${missing[@]}" >&2
  echo "  (system packages: scripts/install-deps.sh)" >&2
  exit 2
fi

mkdir -p "$RES" || exit 2
RES="$(cd "$RES" && pwd)"
WORK="$(mktemp -d /tmp/vigil-soak.XXXXXX)"
: > "$RES/run.log"
log() { echo "[$(date +%T)] $*" | tee -a "$RES/run.log" >&2; }

SERVER_PID=""
LOAD_PID=""
STOP_RC=""
stop_pid() {  # stop_pid PID: SIGTERM, wait <= 30 s, SIGKILL; sets STOP_RC to the exit status (no subshell: wait)
  local pid=$1
  STOP_RC=""
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && { echo "pid $pid ignored SIGTERM for 30 s: SIGKILL" >&2; kill -KILL "$pid" 2>/dev/null; }
  fi
  wait "$pid" 2>/dev/null; STOP_RC=$?
}
cleanup() {
  [ -n "$LOAD_PID" ] && stop_pid "$LOAD_PID"
  [ -n "$SERVER_PID" ] && stop_pid "$SERVER_PID"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

if [ -z "${IMAGE:-}" ]; then
  IMAGE="$BASELINE_DIR/images/img_0_640x480.jpg"
  [ -f "$IMAGE" ] || { IMAGE="$WORK/img_640x480.jpg"; "$PY" "$here/seed_weights.py" --image-only "$IMAGE" || exit 2; }
fi
[ -f "$IMAGE" ] || { log "IMAGE $IMAGE does not exist"; exit 2; }
export IMAGE

if [ -z "$MODEL" ]; then
  MODEL="$WORK/$ARCH.pth"
  log "writing the seed's $ARCH weights -> $MODEL"
  PYTHONPATH="$BASELINE_DIR" timeout 600 "$PY" "$here/seed_weights.py" "$ARCH" "$MODEL" > "$RES/seed_weights.log" 2>&1 \
    || { log "seed_weights.py failed:"; tail -5 "$RES/seed_weights.log" >&2; exit 2; }
  MODEL_ARGS=(--model "$MODEL" --arch "$ARCH" --num-classes 2)
else
  MODEL_ARGS=(--model "$MODEL")
  # a torchvision state dict says nothing about its architecture: pass ARCH along
  case "$MODEL" in *.pth|*.pt) MODEL_ARGS+=(--arch "$ARCH" --num-classes "${NUM_CLASSES:-2}") ;; esac
fi
VIGIL_RUN="$VIGIL_BIN"
if [ "$COPY_BINARY" = 1 ]; then cp "$VIGIL_BIN" "$WORK/vigil" && VIGIL_RUN="$WORK/vigil"; fi

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "nproc: $(nproc); cpu: $(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1); kernel $(uname -r)"
  echo "vigil: $VIGIL_BIN ($(stat -c '%y' "$VIGIL_BIN" | cut -d. -f1)); $(timeout 30 "$VIGIL_BIN" version 2>&1 | head -1)"
  echo "repo: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null)$(git -C "$repo" diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)')"
  echo "model: ${MODEL_ARGS[*]}"
  echo "load: $LOAD_TOOL CONC=$CONC MIX=$MIX MIX_BAD=$MIX_BAD SOAK_SECONDS=$SOAK_SECONDS SAMPLE_S=$SAMPLE_S image $IMAGE"
  echo "threads: --threads $THREADS OMP_NUM_THREADS=$OMP_NUM_THREADS OPENBLAS_NUM_THREADS=$OPENBLAS_NUM_THREADS OPENBLAS_THREAD_TIMEOUT=${OPENBLAS_THREAD_TIMEOUT:-unset}"
  echo "vigil args: global '$VIGIL_GLOBAL_ARGS' serve '$VIGIL_ARGS'"
  echo "verdict: SLOPE_MAX=$SLOPE_MAX MiB/min over the samples after WARMUP_FRACTION=$WARMUP_FRACTION of the run"
} > "$RES/env.txt"
cat "$RES/env.txt" >&2

# ---- start ----------------------------------------------------------------------------------------------------------
if [ "$(curl -s -o /dev/null --max-time 2 -w '%{http_code}' "$BASE/" 2>/dev/null)" != "000" ]; then
  log "port $PORT is already in use; set PORT"; exit 2
fi
echo "$VIGIL_RUN $VIGIL_GLOBAL_ARGS --threads $THREADS serve ${MODEL_ARGS[*]} --host $HOST --port $PORT --port-file $RES/port $VIGIL_ARGS" > "$RES/commands.txt"
# shellcheck disable=SC2086  # VIGIL_ARGS / VIGIL_GLOBAL_ARGS are word-split on purpose
( cd "$WORK" && exec "$VIGIL_RUN" $VIGIL_GLOBAL_ARGS --threads "$THREADS" serve "${MODEL_ARGS[@]}" --host "$HOST" \
    --port "$PORT" --port-file "$RES/port" $VIGIL_ARGS ) > "$RES/server.log" 2>&1 &
SERVER_PID=$!
up=""
deadline=$(( $(date +%s) + STARTUP_TIMEOUT ))
while [ "$(date +%s)" -lt "$deadline" ]; do
  kill -0 "$SERVER_PID" 2>/dev/null || break
  if [ -s "$RES/port" ] && curl -sf --max-time 2 "$BASE/ready" -o /dev/null 2>/dev/null; then up=1; break; fi
  sleep 0.2
done
if [ -z "$up" ]; then
  log "vigil serve did not become ready within ${STARTUP_TIMEOUT}s (alive: $(kill -0 "$SERVER_PID" 2>/dev/null && echo yes || echo no)); $RES/server.log:"
  tail -5 "$RES/server.log" >&2
  exit 2
fi
log "vigil serve ready (pid $SERVER_PID); warm-up"
for _ in 1 2 3; do
  curl -s -o /dev/null --max-time "$REQ_TIMEOUT" -H 'Expect:' -F "file=@$IMAGE;type=image/jpeg" "$BASE/v1/predict"
done

# ---- load -------------------------------------------------------------------------------------------------------------
case "$LOAD_TOOL" in
  wrk)
    script="$here/wrk_mix.lua"; url="$BASE"
    if [ "$MIX" != 1 ]; then script="$here/wrk_multipart.lua"; url="$BASE/v1/predict"; export EXPECT_TYPE=application/json; fi
    echo "load: IMAGE=$IMAGE MIX_BAD=$MIX_BAD wrk -t$(( CONC < 2 ? CONC : 2 )) -c$CONC -d${SOAK_SECONDS}s --timeout ${REQ_TIMEOUT}s --latency -s $script $url" >> "$RES/commands.txt"
    timeout $((SOAK_SECONDS + REQ_TIMEOUT + 60)) wrk -t$(( CONC < 2 ? CONC : 2 )) -c"$CONC" -d"${SOAK_SECONDS}s" \
      --timeout "${REQ_TIMEOUT}s" --latency -s "$script" "$url" > "$RES/load.txt" 2>&1 &
    LOAD_PID=$! ;;
  locust)
    echo "load: locust -f $here/locustfile.py --headless -u $CONC -r $CONC -t ${SOAK_SECONDS}s --host $BASE --csv $RES/locust" >> "$RES/commands.txt"
    timeout $((SOAK_SECONDS + REQ_TIMEOUT + 60)) locust -f "$here/locustfile.py" --headless -u "$CONC" -r "$CONC" \
      -t "${SOAK_SECONDS}s" --host "$BASE" --csv "$RES/locust" --only-summary --stop-timeout 30 --loglevel WARNING \
      > "$RES/load.txt" 2>&1 &
    LOAD_PID=$! ;;
esac
log "load: $LOAD_TOOL, $CONC concurrent, ${SOAK_SECONDS}s (pid $LOAD_PID); sampling every ${SAMPLE_S}s -> $RES/samples.csv"

# ---- sampling -----------------------------------------------------------------------------------------------------------
echo "t_s,vmrss_kib,vmhwm_kib,threads,fds,cpu_ticks,metrics_rss_bytes" > "$RES/samples.csv"
t0=$(date +%s.%N)
alive=1
next=0
while kill -0 "$LOAD_PID" 2>/dev/null; do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then alive=0; log "vigil serve DIED during the soak"; break; fi
  now=$(date +%s.%N)
  t=$(awk -v a="$t0" -v b="$now" 'BEGIN{printf "%.1f", b-a}')
  if awk -v t="$t" -v n="$next" 'BEGIN{exit !(t >= n)}'; then
    read -r rss hwm thr < <(awk '$1=="VmRSS:"{r=$2} $1=="VmHWM:"{h=$2} $1=="Threads:"{n=$2} END{print r, h, n}' "/proc/$SERVER_PID/status" 2>/dev/null)
    fds=$(ls "/proc/$SERVER_PID/fd" 2>/dev/null | wc -l)
    ticks=$(sed 's/.*) //' "/proc/$SERVER_PID/stat" 2>/dev/null | awk '{print $12+$13}')
    mrss=$(curl -s --max-time 5 "$BASE/metrics" 2>/dev/null | awk '$1=="process_resident_memory_bytes"{printf "%.0f", $2}')
    echo "$t,${rss:-},${hwm:-},${thr:-},${fds:-},${ticks:-},${mrss:-}" >> "$RES/samples.csv"
    next=$(awk -v n="$next" -v s="$SAMPLE_S" 'BEGIN{print n+s}')
  fi
  sleep 0.5
done
wait "$LOAD_PID" 2>/dev/null; load_rc=$?
LOAD_PID=""
[ "$alive" = 1 ] && ! kill -0 "$SERVER_PID" 2>/dev/null && { alive=0; log "vigil serve DIED during the soak"; }
if [ "$alive" = 1 ]; then
  curl -s --max-time 10 "$BASE/v1/stats" -o "$RES/stats.json"
  curl -s --max-time 10 "$BASE/metrics" -o "$RES/metrics.txt"
  grep -E '^(VmRSS|VmHWM|VmSize|Threads)' "/proc/$SERVER_PID/status" > "$RES/status_end.txt" 2>/dev/null
fi
stop_pid "$SERVER_PID"; exit_status=$STOP_RC
SERVER_PID=""
log "load exit $load_rc; vigil serve exit status after SIGTERM: $exit_status"

# ---- report -------------------------------------------------------------------------------------------------------------
"$PY" - "$RES" "$SLOPE_MAX" "$WARMUP_FRACTION" "$alive" "$exit_status" "$LOAD_TOOL" <<'PY'
import csv, json, os, re, shutil, subprocess, sys

res, slope_max, warm_frac = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
alive, exit_status, tool = sys.argv[4] == "1", sys.argv[5], sys.argv[6]
rows = list(csv.DictReader(open(os.path.join(res, "samples.csv"))))


def col(name, scale=1.0):
    out = []
    for r in rows:
        try:
            out.append((float(r["t_s"]), float(r[name]) * scale))
        except (TypeError, ValueError):
            pass
    return out


def slope_per_min(points):
    n = len(points)
    if n < 3:
        return None
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    sxx = sum((t - mx) ** 2 for t, _ in points)
    if sxx == 0:
        return None
    return 60.0 * sum((t - mx) * (v - my) for t, v in points) / sxx


rss = col("vmrss_kib", 1 / 1024)
mrss = col("metrics_rss_bytes", 1 / 1048576)
fds = col("fds")
thr = col("threads")
problems = []
lines = []
if not rss:
    problems.append("no memory samples")
else:
    t_end = rss[-1][0]
    cut = t_end * warm_frac
    late = [p for p in rss if p[0] >= cut]
    s = slope_per_min(late)
    ms = slope_per_min([p for p in mrss if p[0] >= cut])
    lines.append(f"samples: {len(rss)} over {t_end:.0f} s (every ~{t_end / max(1, len(rss) - 1):.1f} s)")
    lines.append(f"VmRSS MiB: first {rss[0][1]:.1f}, last {rss[-1][1]:.1f}, max {max(v for _, v in rss):.1f}, "
                 f"at the start of the fit window ({cut:.0f} s) {late[0][1]:.1f}")
    lines.append(f"VmRSS slope after {cut:.0f} s (least squares over {len(late)} samples): "
                 + (f"{s:+.3f} MiB/min" if s is not None else "n/a (too few samples)")
                 + f" (threshold {slope_max} MiB/min)")
    if mrss:
        lines.append(f"/metrics process_resident_memory_bytes MiB: first {mrss[0][1]:.1f}, last {mrss[-1][1]:.1f}, "
                     f"max {max(v for _, v in mrss):.1f}, slope after {cut:.0f} s "
                     + (f"{ms:+.3f} MiB/min" if ms is not None else "n/a"))
        # cross-check: the two readings taken in the same sample should agree (same process, same moment)
        pairs = [(float(r["vmrss_kib"]) / 1024, float(r["metrics_rss_bytes"]) / 1048576) for r in rows
                 if r.get("vmrss_kib") and r.get("metrics_rss_bytes")]
        if pairs:
            worst = max(abs(a - b) for a, b in pairs)
            lines.append(f"VmRSS vs /metrics RSS: largest difference in one sample {worst:.1f} MiB")
            if worst > max(32.0, 0.1 * max(a for a, _ in pairs)):
                problems.append(f"/metrics process_resident_memory_bytes disagrees with VmRSS by {worst:.1f} MiB")
    else:
        lines.append("/metrics process_resident_memory_bytes: never read (missing from /metrics?)")
        problems.append("/metrics has no process_resident_memory_bytes")
    if fds:
        lines.append(f"open fds: first {fds[0][1]:.0f}, last {fds[-1][1]:.0f}, max {max(v for _, v in fds):.0f}; "
                     f"threads: first {thr[0][1]:.0f}, last {thr[-1][1]:.0f}, max {max(v for _, v in thr):.0f}")
        if fds[-1][1] > fds[0][1] + 16:
            problems.append(f"open file descriptors grew from {fds[0][1]:.0f} to {fds[-1][1]:.0f}")
    if s is not None and s > slope_max:
        problems.append(f"VmRSS grows {s:.3f} MiB/min after the warm-up (> {slope_max})")

load_txt = open(os.path.join(res, "load.txt"), errors="replace").read()
if tool == "wrk":
    m = re.search(r"^WRKJSON (.*)$", load_txt, re.M)
    if not m:
        problems.append("wrk printed no summary (see load.txt)")
    else:
        w = json.loads(m.group(1))
        sent = w.get("sent", {})
        bad_sent = sent.get("bad_image", 0)
        got400 = w["statuses"].get("400", 0) + w["statuses"].get("415", 0)  # bad image: 400 or 415 accepted
        unexpected = w["non2xx_unexpected"] + max(0, got400 - bad_sent) if bad_sent else w["non2xx_unexpected"]
        sock = w["err_connect"] + w["err_read"] + w["err_write"] + w["err_timeout"]
        lines.append(f"load: {w['requests']:,} requests, {w['rps']:.2f} req/s, p50 {w['lat_p50_ms']:.1f} ms, "
                     f"p99 {w['lat_p99_ms']:.1f} ms, statuses {w['statuses']}, socket errors {sock}"
                     + (f", sent per kind {sent}" if sent else ""))
        if bad_sent and got400 < bad_sent - 8:  # a few may still be in flight when wrk stops
            problems.append(f"sent {bad_sent} bad images but got only {got400} answers 400/415")
        if unexpected or sock or w.get("bad_content_type"):
            problems.append(f"{unexpected} unexpected non-2xx, {sock} socket errors, {w.get('bad_content_type')} wrong "
                            f"Content-Type; first: {w.get('first_unexpected')}")
else:
    path = os.path.join(res, "locust_stats.csv")
    if os.path.exists(path):
        agg = [r for r in csv.DictReader(open(path)) if r["Name"] == "Aggregated"]
        if agg:
            a = agg[0]
            lines.append(f"load: {a['Request Count']} requests, {float(a['Requests/s']):.2f} req/s, "
                         f"{a['Failure Count']} failures, p50 {a['50%']} ms, p99 {a['99%']} ms")
            if int(a["Failure Count"]):
                problems.append(f"{a['Failure Count']} failed requests (see locust_failures.csv)")
    else:
        problems.append("locust wrote no statistics (see load.txt)")
if not alive:
    problems.append("vigil serve died during the soak (see server.log)")
elif exit_status != "0":
    problems.append(f"vigil serve exit status {exit_status} after SIGTERM (expected 0)")

# plot, when a plotting tool is at hand
plot = os.path.join(res, "rss.png")
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot([t for t, _ in rss], [v for _, v in rss], label="VmRSS")
    if mrss:
        ax.plot([t for t, _ in mrss], [v for _, v in mrss], "--", label="/metrics RSS")
    ax.set_xlabel("s"); ax.set_ylabel("MiB"); ax.legend(); ax.grid(alpha=0.3)
    fig.tight_layout(); fig.savefig(plot, dpi=100)
    lines.append(f"plot: {plot}")
except ImportError:
    if shutil.which("gnuplot"):
        gp = (f"set terminal png size 800,400; set output '{plot}'; set datafile separator ','; "
              f"set xlabel 's'; set ylabel 'MiB'; set key autotitle columnhead; "
              f"plot '{os.path.join(res, 'samples.csv')}' using 1:($2/1024) with lines title 'VmRSS', "
              f"'' using 1:($7/1048576) with lines title '/metrics RSS'")
        r = subprocess.run(["gnuplot", "-e", gp], capture_output=True, timeout=60)
        lines.append(f"plot: {plot}" if r.returncode == 0 else "plot: gnuplot failed")
    else:
        lines.append("plot: skipped (neither python3-matplotlib nor gnuplot installed)")

verdict = "PASS" if not problems else "FAIL"
report = "\n".join(lines + [f"verdict: {verdict}"] + [f"  - {p}" for p in problems])
print(report)
with open(os.path.join(res, "summary.txt"), "w") as f:
    f.write(report + "\n")
sys.exit(0 if not problems else 1)
PY
rc=$?
log "soak results: $RES (samples.csv, summary.txt, load.txt, server.log)"
exit $rc
