#!/usr/bin/env bash
# Side by side: the seeds' Python server (FastAPI + torchvision, ../shared/bench/baseline/seed_server.py) and
# `vigil serve`, same weights, same image, same client (wrk), same thread settings, one after the other in one run.
#
# Per ARCH:
#   (a) /usr/bin/python3 bench/seed_weights.py writes the seed's weights (seed_server.build_model(arch), seeded
#       random) as a state-dict .pth in the work dir, plus the model's reference output on the image;
#   (b) uvicorn seed_server:app (MODEL_WEIGHTS=that .pth) on 127.0.0.1:PORT: wait for GET /, warm up, then wrk at
#       CONC connections for DURATION s on POST /predict/ (PNG) and POST /predict/json; stop it;
#   (c) vigil serve --model that .pth --arch ARCH --num-classes 2 on 127.0.0.1:PORT: wait for the port file and
#       GET /ready, warm up, then wrk the same way on POST /predict/ (PNG) and POST /v1/predict (multipart), and
#       (VIGIL_RAW=1, default) POST /v1/predict with the image as raw body (no Python counterpart); stop it;
#   (d) bench/serve_report.py prints the table (req/s, p50/p95/p99 ms, non-2xx and socket errors, ratios
#       vigil/python) and writes RESULTS_DIR/results.md; raw outputs stay in RESULTS_DIR.
# Peak RSS = VmHWM of the server process just before it is stopped. Traffic goes to 127.0.0.1 only; every wait
# and every client call is bounded in time; servers are stopped by PID on exit.
# The machine is shared: before each measured phase the script waits (at most WAIT_IDLE_MAX s) for an idle
# machine, records how much CPU other processes used during the phase, redoes a phase whose foreign load
# exceeded OTHER_MAX cores (MAX_TRIES attempts in all), and the table flags what stayed dirty.
#
# Usage: bench/serve.sh [vigil-binary]        (default build/apps/vigil/vigil)
# Env:   ARCHS (fasterrcnn_mobilenet_v3_large_320_fpn), CONC (4), DURATION (30), WRK_THREADS (min(2,CONC)),
#        PORT (18080), N_WARM (3), IMAGE (../shared/bench/baseline/images/img_0_640x480.jpg, else generated),
#        RESULTS_DIR (bench/results/serve-<date>), WORK_DIR (a fresh /tmp dir, removed unless KEEP_WORK=1),
#        SIDES ("python vigil"), VIGIL_ARGS (extra `vigil serve` args, e.g. "--max-batch 4"),
#        VIGIL_GLOBAL_ARGS (before `serve`), THREADS (2: torch/OpenMP/OpenBLAS threads, both servers),
#        OPENBLAS_THREAD_TIMEOUT (4; the baseline's best Python config, applied to both), V1_QUERY (query string
#        for /v1/predict, default none), VIGIL_RAW (1), COPY_BINARY (1: run a /tmp copy of the binary),
#        REQ_TIMEOUT (60 s per request), STARTUP_TIMEOUT (180 s), WAIT_IDLE_MAX (120), OTHER_MAX (0.3),
#        MAX_TRIES (2), BASELINE_DIR (../shared/bench/baseline).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
PY=/usr/bin/python3
HOST=127.0.0.1

VIGIL_BIN="${1:-$repo/build/apps/vigil/vigil}"
ARCHS="${ARCHS:-fasterrcnn_mobilenet_v3_large_320_fpn}"
CONC="${CONC:-4}"
DURATION="${DURATION:-30}"
WRK_THREADS="${WRK_THREADS:-$((CONC < 2 ? CONC : 2))}"
PORT="${PORT:-18080}"
N_WARM="${N_WARM:-3}"
SIDES="${SIDES:-python vigil}"
VIGIL_ARGS="${VIGIL_ARGS:-}"
VIGIL_GLOBAL_ARGS="${VIGIL_GLOBAL_ARGS:-}"
THREADS="${THREADS:-2}"
V1_QUERY="${V1_QUERY:-}"
VIGIL_RAW="${VIGIL_RAW:-1}"
COPY_BINARY="${COPY_BINARY:-1}"
REQ_TIMEOUT="${REQ_TIMEOUT:-60}"
STARTUP_TIMEOUT="${STARTUP_TIMEOUT:-180}"
WAIT_IDLE_MAX="${WAIT_IDLE_MAX:-120}"
OTHER_MAX="${OTHER_MAX:-0.3}"
MAX_TRIES="${MAX_TRIES:-2}"
STAMP="$(date +%Y%m%d-%H%M%S)"
RES="${RESULTS_DIR:-$here/results/serve-$STAMP}"
BASE="http://$HOST:$PORT"

# Same thread settings for both servers.
source "$here/serve_common.sh"

# ---- tools ------------------------------------------------------------------------------------------------------
missing=()
command -v wrk >/dev/null 2>&1 || missing+=("wrk (apt package wrk)")
command -v curl >/dev/null 2>&1 || missing+=("curl (apt package curl)")
if [ ! -x "$PY" ]; then
  missing+=("$PY (apt package python3)")
else
  for m in torch:python3-torch torchvision:python3-torchvision PIL:python3-pil fastapi:python3-fastapi \
           uvicorn:python3-uvicorn multipart:python3-multipart; do
    "$PY" -c "import ${m%%:*}" >/dev/null 2>&1 || missing+=("python module ${m%%:*} for $PY (apt package ${m#*:})")
  done
fi
[ -f "$BASELINE_DIR/seed_server.py" ] || missing+=("$BASELINE_DIR/seed_server.py (set BASELINE_DIR)")
if [[ " $SIDES " == *" vigil "* ]]; then
  if [ ! -x "$VIGIL_BIN" ]; then
    missing+=("vigil binary $VIGIL_BIN (build it, or pass its path as the first argument)")
  elif [[ "$(timeout 30 "$VIGIL_BIN" serve --help 2>&1)" != *--port-file* ]]; then
    missing+=("'$VIGIL_BIN serve' (this build has no serve subcommand yet)")
  fi
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench/serve.sh: missing:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  echo "  (system packages: scripts/install-deps.sh)" >&2
  exit 2
fi

mkdir -p "$RES" || exit 2
RES="$(cd "$RES" && pwd)"
if [ -n "${WORK_DIR:-}" ]; then mkdir -p "$WORK_DIR"; WORK="$(cd "$WORK_DIR" && pwd)"; else WORK="$(mktemp -d /tmp/vigil-serve-bench.XXXXXX)"; fi
: > "$RES/run.log"
: > "$RES/phases.jsonl"
: > "$RES/servers.jsonl"
: > "$RES/commands.txt"
log() { echo "[$(date +%T)] $*" | tee -a "$RES/run.log" >&2; }

SERVER_PID=""
stop_server() {  # stop_server [status-file]: SIGTERM, wait <= 30 s, then SIGKILL; records the exit status
  local rc="" pid="$SERVER_PID"
  if [ -n "$pid" ]; then
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null
      for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      if kill -0 "$pid" 2>/dev/null; then
        log "  server $pid did not stop within 30 s of SIGTERM: SIGKILL"
        kill -KILL "$pid" 2>/dev/null
      fi
    fi
    wait "$pid" 2>/dev/null; rc=$?
  fi
  SERVER_PID=""
  [ -n "${1:-}" ] && echo "$rc" > "$1"
  return 0
}
cleanup() {
  stop_server
  if [ "${KEEP_WORK:-0}" = 1 ]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ---- CPU accounting (idea from the baseline's run_baseline.sh) ----------------------------------------------------
# snapshot: "<machine busy ticks> <server ticks> <client ticks> <epoch s>"; client = this script's reaped children
# (wrk, curl), server = the running server's utime+stime.
CLK_TCK=$(getconf CLK_TCK)
cpu_snap() {
  local busy srv=0 cli
  busy=$(awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat)
  if [ -n "$SERVER_PID" ] && [ -r "/proc/$SERVER_PID/stat" ]; then
    srv=$(sed 's/.*) //' "/proc/$SERVER_PID/stat" | awk '{print $12+$13}')
  fi
  cli=$(sed 's/.*) //' "/proc/$$/stat" | awk '{print $14+$15}')
  echo "$busy $srv $cli $(date +%s.%N)"
}
wait_idle() {  # until < 10% of one core busy over 1 s, at most WAIT_IDLE_MAX s
  local a b waited=0
  while [ "$waited" -lt "$WAIT_IDLE_MAX" ]; do
    a=$(awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat); sleep 1
    b=$(awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat)
    if [ $((b - a)) -lt $((CLK_TCK / 10 + 1)) ]; then
      [ "$waited" -gt 0 ] && log "  machine was busy; waited ${waited}s"
      return 0
    fi
    waited=$((waited + 1))
  done
  log "  WARNING: machine still busy after ${WAIT_IDLE_MAX}s; measuring anyway (flagged in the table)"
}
mem_kib() { awk -v k="$1:" '$1==k{print $2}' "/proc/$SERVER_PID/status" 2>/dev/null; }

# ---- machine and software record -----------------------------------------------------------------------------
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "host: $(uname -n)"
  echo "nproc: $(nproc)"
  echo "cpu: $(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
  echo "cpu flags (avx*): $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^avx' | sort -u | tr '\n' ' ')"
  echo "mem: $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "kernel: $(uname -r)"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "python: $($PY --version 2>&1) ($PY)"
  $PY -c 'import torch, torchvision, fastapi, uvicorn, starlette, PIL, multipart, h11
print("torch:", torch.__version__, "| torchvision:", torchvision.__version__, "| fastapi:", fastapi.__version__,
      "| uvicorn:", uvicorn.__version__, "| starlette:", starlette.__version__, "| pillow:", PIL.__version__,
      "| python-multipart:", multipart.__version__, "| h11:", h11.__version__)' 2>/dev/null
  echo "wrk: $(wrk -v 2>&1 | head -1)"
  echo "blas: $(readlink -f /etc/alternatives/libblas.so.3-x86_64-linux-gnu 2>/dev/null)"
  if [[ " $SIDES " == *" vigil "* ]]; then
    echo "vigil binary: $VIGIL_BIN ($(stat -c '%y' "$VIGIL_BIN" 2>/dev/null | cut -d. -f1))"
    echo "vigil version: $(timeout 30 "$VIGIL_BIN" version 2>&1 | tr '\n' ' ' | cut -c1-400)"
  fi
  echo "repo: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null)$(git -C "$repo" diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)')"
  echo "threads: TORCH_NUM_THREADS=$TORCH_NUM_THREADS OMP_NUM_THREADS=$OMP_NUM_THREADS OPENBLAS_NUM_THREADS=$OPENBLAS_NUM_THREADS OPENBLAS_THREAD_TIMEOUT=${OPENBLAS_THREAD_TIMEOUT:-unset} (both servers); vigil: --threads $THREADS"
  echo "params: ARCHS='$ARCHS' SIDES='$SIDES' CONC=$CONC DURATION=$DURATION WRK_THREADS=$WRK_THREADS N_WARM=$N_WARM PORT=$PORT REQ_TIMEOUT=$REQ_TIMEOUT V1_QUERY='$V1_QUERY' VIGIL_RAW=$VIGIL_RAW"
  echo "vigil args: global '$VIGIL_GLOBAL_ARGS' serve '$VIGIL_ARGS'"
  echo "interference: WAIT_IDLE_MAX=$WAIT_IDLE_MAX OTHER_MAX=$OTHER_MAX MAX_TRIES=$MAX_TRIES"
} > "$RES/env.txt"

# ---- image --------------------------------------------------------------------------------------------------------
if [ -z "${IMAGE:-}" ]; then
  IMAGE="$BASELINE_DIR/images/img_0_640x480.jpg"
  if [ ! -f "$IMAGE" ]; then
    IMAGE="$WORK/img_640x480.jpg"
    $PY "$here/seed_weights.py" --image-only "$IMAGE" || { log "cannot generate a test image"; exit 2; }
  fi
fi
[ -f "$IMAGE" ] || { log "IMAGE $IMAGE does not exist"; exit 2; }
IMAGE="$(cd "$(dirname "$IMAGE")" && pwd)/$(basename "$IMAGE")"
echo "image: $IMAGE ($(stat -c %s "$IMAGE") bytes, sha256 $(sha256sum "$IMAGE" | cut -c1-16))" >> "$RES/env.txt"
cat "$RES/env.txt" >&2

if [[ " $SIDES " == *" vigil "* ]] && [ "$COPY_BINARY" = 1 ]; then
  cp "$VIGIL_BIN" "$WORK/vigil" && VIGIL_RUN="$WORK/vigil" || VIGIL_RUN="$VIGIL_BIN"
else
  VIGIL_RUN="$VIGIL_BIN"
fi

# ---- helpers ------------------------------------------------------------------------------------------------------
port_busy() { [ "$(curl -s -o /dev/null --max-time 2 -w '%{http_code}' "$BASE/" 2>/dev/null)" != "000" ]; }

# post <kind: multipart|raw> <url> <out> -> prints "code<TAB>seconds<TAB>bytes<TAB>content-type"
post() {
  local fmt='%{http_code}\t%{time_total}\t%{size_download}\t%{content_type}\n'
  if [ "$1" = raw ]; then
    curl -s -o "$3" --max-time "$REQ_TIMEOUT" -w "$fmt" -H 'Expect:' -H "Content-Type: image/jpeg" \
      --data-binary "@$IMAGE" "$2"
  else
    curl -s -o "$3" --max-time "$REQ_TIMEOUT" -w "$fmt" -H 'Expect:' -F "file=@$IMAGE;type=image/jpeg" "$2"
  fi
}

# phase <dir> <server> <arch> <pair> <route label> <kind> <url> <expect content-type>
phase() {
  local dir=$1 server=$2 arch=$3 pair=$4 label=$5 kind=$6 url=$7 expect=$8
  local script="$here/wrk_multipart.lua" out="$dir/wrk_$pair.txt" try s0 s1 cpu other
  [ "$kind" = raw ] && script="$here/wrk_raw.lua"
  local cmd="IMAGE=$IMAGE EXPECT_TYPE=$expect wrk -t$WRK_THREADS -c$CONC -d${DURATION}s --timeout ${REQ_TIMEOUT}s --latency -s $script $url"
  echo "$server $pair: $cmd" >> "$RES/commands.txt"
  for try in $(seq 1 "$MAX_TRIES"); do
    wait_idle
    s0=$(cpu_snap)
    IMAGE="$IMAGE" EXPECT_TYPE="$expect" timeout $((DURATION + REQ_TIMEOUT + 30)) \
      wrk -t"$WRK_THREADS" -c"$CONC" -d"${DURATION}s" --timeout "${REQ_TIMEOUT}s" --latency -s "$script" "$url" \
      > "$out" 2>&1
    local wrc=$?
    s1=$(cpu_snap)
    cpu=$(echo "$s0 $s1" | awk -v t="$CLK_TCK" '{w=$8-$4; if (w<=0) w=1e-9;
          m=($5-$1)/t/w; s=($6-$2)/t/w; c=($7-$3)/t/w;
          printf "{\"wall_s\":%.2f,\"machine\":%.3f,\"server\":%.3f,\"client\":%.3f,\"other\":%.3f}", w, m, s, c, m-s-c}')
    other=$(echo "$cpu" | sed 's/.*"other":\([-0-9.]*\).*/\1/')
    local wj
    wj=$(grep -h '^WRKJSON ' "$out" | tail -1 | sed 's/^WRKJSON //')
    [ -n "$wj" ] || wj='null'
    printf '{"arch":"%s","server":"%s","pair":"%s","route":"%s","try":%d,"wrk_rc":%d,"cpu":%s,"wrk":%s}\n' \
      "$arch" "$server" "$pair" "$label" "$try" "$wrc" "$cpu" "$wj" >> "$RES/phases.jsonl"
    if [ "$wj" = null ]; then log "  $server $label: wrk gave no summary (rc $wrc), see $out"; fi
    log "  $server $label: $(echo "$wj" | "$PY" "$here/serve_report.py" --phase-line) (foreign load $other cores, try $try)"
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then log "  $server DIED during $label"; return 1; fi
    if awk -v o="$other" -v m="$OTHER_MAX" 'BEGIN{exit !(o <= m)}'; then return 0; fi
    [ "$try" -lt "$MAX_TRIES" ] && { log "  $label: foreign load $other > $OTHER_MAX cores: redoing"; mv "$out" "$out.contaminated$try"; }
  done
  return 0
}

# start_server <server> <arch> <dir> <pth>; sets SERVER_PID, returns non-zero when it did not come up
start_server() {
  local server=$1 arch=$2 dir=$3 pth=$4 t0 t1 up="" url
  if port_busy; then log "  port $PORT is already in use by something else: skipping $server"; return 1; fi
  t0=$(date +%s.%N)
  if [ "$server" = python ]; then
    echo "$server server: cd $WORK && PYTHONPATH=$BASELINE_DIR MODEL_ARCH=$arch MODEL_WEIGHTS=$pth $PY -m uvicorn seed_server:app --host $HOST --port $PORT --workers 1" >> "$RES/commands.txt"
    ( cd "$WORK" && PYTHONPATH="$BASELINE_DIR" MODEL_ARCH="$arch" MODEL_WEIGHTS="$pth" \
        exec "$PY" -m uvicorn seed_server:app --host "$HOST" --port "$PORT" --workers 1 ) > "$dir/server.log" 2>&1 &
    SERVER_PID=$!
    url="$BASE/"
  else
    rm -f "$dir/port"
    echo "$server server: $VIGIL_RUN $VIGIL_GLOBAL_ARGS --threads $THREADS serve --model $pth --arch $arch --num-classes 2 --host $HOST --port $PORT --port-file $dir/port $VIGIL_ARGS  (copy of $VIGIL_BIN)" >> "$RES/commands.txt"
    # shellcheck disable=SC2086  # VIGIL_ARGS / VIGIL_GLOBAL_ARGS are word-split on purpose
    ( cd "$WORK" && exec "$VIGIL_RUN" $VIGIL_GLOBAL_ARGS --threads "$THREADS" serve --model "$pth" --arch "$arch" \
        --num-classes 2 --host "$HOST" --port "$PORT" --port-file "$dir/port" $VIGIL_ARGS ) > "$dir/server.log" 2>&1 &
    SERVER_PID=$!
    url="$BASE/ready"
  fi
  local deadline=$(( $(date +%s) + STARTUP_TIMEOUT ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    if [ "$server" = vigil ] && [ ! -s "$dir/port" ]; then sleep 0.2; continue; fi
    if curl -sf --max-time 2 "$url" -o "$dir/ready.json" 2>/dev/null; then up=1; break; fi
    sleep 0.2
  done
  t1=$(date +%s.%N)
  if [ -z "$up" ]; then
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      log "  $server did not answer $url within ${STARTUP_TIMEOUT}s; see $dir/server.log"
    else
      log "  $server exited during start-up; see $dir/server.log:"; tail -5 "$dir/server.log" | sed 's/^/    /' >&2
    fi
    stop_server "$dir/exit_status"
    return 1
  fi
  if [ "$server" = vigil ] && [ "$(cat "$dir/port")" != "$PORT" ]; then
    log "  WARNING: vigil's port file says '$(cat "$dir/port")', expected $PORT"
  fi
  STARTUP_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')
  return 0
}

# ---- main ---------------------------------------------------------------------------------------------------------
log "results -> $RES (work dir $WORK)"
for arch in $ARCHS; do
  adir="$RES/$arch"
  mkdir -p "$adir"
  pth="$WORK/$arch.pth"
  log "=== $arch: writing the seed's weights ($PY $here/seed_weights.py)"
  echo "weights: PYTHONPATH=$BASELINE_DIR $PY $here/seed_weights.py $arch $pth $IMAGE $adir/seed.json" >> "$RES/commands.txt"
  if ! PYTHONPATH="$BASELINE_DIR" timeout 600 "$PY" "$here/seed_weights.py" "$arch" "$pth" "$IMAGE" "$adir/seed.json" \
       > "$adir/seed_weights.log" 2>&1; then
    log "  writing the weights failed:"; tail -5 "$adir/seed_weights.log" | sed 's/^/    /' >&2
    continue
  fi

  for server in $SIDES; do
    sdir="$adir/$server"
    mkdir -p "$sdir"
    log "--- $arch / $server"
    STARTUP_S=""
    start_server "$server" "$arch" "$sdir" "$pth" || {
      printf '{"arch":"%s","server":"%s","started":false}\n' "$arch" "$server" >> "$RES/servers.jsonl"; continue; }
    rss_load=$(mem_kib VmRSS)
    if [ "$server" = python ]; then
      routes=("png|/predict/|multipart|/predict/|image/png" "json|/predict/json|multipart|/predict/json|application/json")
    else
      v1="/v1/predict${V1_QUERY:+?$V1_QUERY}"
      routes=("png|/predict/|multipart|/predict/|image/png" "json|$v1|multipart|/v1/predict (multipart)|application/json")
      [ "$VIGIL_RAW" = 1 ] && routes+=("json_raw|$v1|raw|/v1/predict (raw body)|application/json")
      curl -s --max-time 10 "$BASE/v1/models" -o "$sdir/models.json"
    fi
    log "  warm-up: $N_WARM requests per route"
    : > "$sdir/warmup.tsv"
    for r in "${routes[@]}"; do
      IFS='|' read -r pair path kind label expect <<< "$r"
      ext=json; [ "$pair" = png ] && ext=png
      for i in $(seq 1 "$N_WARM"); do
        o=/dev/null; [ "$i" = 1 ] && o="$sdir/sample_$pair.$ext"
        printf '%s\t%s\t' "$pair" "$label" >> "$sdir/warmup.tsv"
        post "$kind" "$BASE$path" "$o" >> "$sdir/warmup.tsv"
      done
    done
    awk -F'\t' '$3 != 200 {bad++; print "  warm-up: " $2 " answered " $3 " (" $6 ")"} END{exit bad > 0}' "$sdir/warmup.tsv" >&2 \
      || log "  WARNING: some warm-up requests failed (see $sdir/warmup.tsv and the samples)"
    rss_warm=$(mem_kib VmRSS)

    alive=true
    for r in "${routes[@]}"; do
      IFS='|' read -r pair path kind label expect <<< "$r"
      phase "$sdir" "$server" "$arch" "$pair" "$label" "$kind" "$BASE$path" "$expect" || { alive=false; break; }
    done
    rss_end=$(mem_kib VmRSS); hwm=$(mem_kib VmHWM); threads_n=$(mem_kib Threads)
    if [ "$server" = vigil ] && $alive; then
      curl -s --max-time 10 "$BASE/v1/stats" -o "$sdir/stats.json"
      curl -s --max-time 10 "$BASE/metrics" -o "$sdir/metrics.txt"
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || alive=false
    stop_server "$sdir/exit_status"
    printf '{"arch":"%s","server":"%s","started":true,"startup_s":%s,"rss_after_load_kib":%s,"rss_after_warmup_kib":%s,"rss_end_kib":%s,"peak_rss_kib":%s,"threads":%s,"alive_at_end":%s,"exit_status":"%s"}\n' \
      "$arch" "$server" "${STARTUP_S:-null}" "${rss_load:-null}" "${rss_warm:-null}" "${rss_end:-null}" "${hwm:-null}" \
      "${threads_n:-null}" "$alive" "$(cat "$sdir/exit_status" 2>/dev/null)" >> "$RES/servers.jsonl"
    log "  $server: peak RSS $(( ${hwm:-0} / 1024 )) MiB, exit status after SIGTERM: $(cat "$sdir/exit_status" 2>/dev/null)"
  done
done

echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$RES/env.txt"
"$PY" "$here/serve_report.py" "$RES"
rc=$?
log "results: $RES/results.md"
exit $rc
