#!/usr/bin/env bash
# Issue 16's loop on real data, end to end through the API: the accidents frames (../shared/datasets/accidents)
# ingested with their own train/val split, a champion trained and registered as accidents@production, then
# `vigil serve --model accidents@production` under continuous traffic (POST /v1/predict with real validation
# frames) while POST /v1/retrain runs three jobs: one that must beat the champion by more than 1 (kept), one
# cancelled while it trains (alias and registry unchanged), and one that trains longer than the champion
# (promoted when better; the server then swaps to it). Prints the jobs' decisions and scores, the versions the
# traffic saw, and the failed requests (the loop's promise: 0).
#
# Usage: bench/retrain_loop.sh [build-dir]
#   env: DATA (../shared/datasets/accidents), SIZE (128), CHAMPION_EPOCHS (1), CHALLENGER_EPOCHS (4), OUT_DIR
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
build="${1:-$repo/build}"
vigil="$build/apps/vigil/vigil"
data="${DATA:-$repo/../shared/datasets/accidents}"
size="${SIZE:-128}"
champion_epochs="${CHAMPION_EPOCHS:-1}"
challenger_epochs="${CHALLENGER_EPOCHS:-4}"
out="${OUT_DIR:-$here/results/retrain-loop-$(date +%Y%m%d-%H%M%S)}"
[[ -x "$vigil" ]] || { echo "no $vigil: build first" >&2; exit 2; }
[[ -d "$data/train" && -d "$data/val" ]] || { echo "SKIP: no accidents dataset at $data" >&2; exit 77; }
command -v curl >/dev/null || { echo "curl missing (scripts/install-deps.sh)" >&2; exit 2; }

mkdir -p "$out"
ws="$out/ws"
server_pid="" traffic_pid=""
cleanup() {
  [[ -n "$traffic_pid" ]] && kill "$traffic_pid" 2>/dev/null || true
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT
v() { "$vigil" --workspace "$ws" --log-level warn "$@"; }

echo "== data: $data"
v data ingest "$data" --format imagefolder --name accidents >"$out/ingest.log"
v data split accidents --mode folders >"$out/split.log"

cat >"$out/accidents.yaml" <<YAML
# MobileNetV2 at ${size}px with Adam, the seed's Python recipe in miniature; epochs set per job.
name: accidents-retrain
epochs: $champion_epochs
seed: 0
threads: 2
model:
  arch: mobilenet_v2
data:
  dataset: accidents
  split: default
  batch_size: 32
  image_size: $size
  threads: 1
  classification_augment:
    hflip: 0.5
optimizer:
  name: adam
  lr: 0.001
schedule:
  name: cosine
  warmup_iters: 20
YAML

echo "== champion: $champion_epochs epoch(s)"
t0=$(date +%s)
v retrain --config "$out/accidents.yaml" --model accidents --run champion --json >"$out/champion.json" 2>"$out/champion.log"
echo "   $(/usr/bin/python3 -c "import json,sys; r=json.load(open('$out/champion.json')); print(r['state'], 'version', r['challenger']['version'], 'score', round(r['challenger']['score'],4))") ($(($(date +%s) - t0)) s)"

"$vigil" --workspace "$ws" serve --model accidents@production --set retrain_config="$out/accidents.yaml" \
  --port 0 --port-file "$out/port" --follow-alias-s 1 >"$out/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 200); do [[ -s "$out/port" ]] && break; sleep 0.1; done
port=$(cat "$out/port")
base="http://127.0.0.1:$port"

# Traffic: real validation frames, one request after another, each answer's status and served version kept.
mapfile -t frames < <(find "$data/val" -name '*.jpg' | sort | head -50)
(
  i=0
  while :; do
    f="${frames[$((i % ${#frames[@]}))]}"
    rc=0
    code=$(curl -s -o "$out/last.json" -w '%{http_code} %{time_total}' --max-time 60 -H 'Content-Type: image/jpeg' \
      --data-binary "@$f" "$base/v1/predict") || rc=$?
    echo "$(date +%T) $code curl=$rc" >>"$out/status.txt"
    /usr/bin/python3 -c "import json; print(json.load(open('$out/last.json')).get('model',{}).get('version',''))" \
      >>"$out/versions.txt" 2>/dev/null || echo "?" >>"$out/versions.txt"
    i=$((i + 1))
  done
) &
traffic_pid=$!

job() {  # POST /v1/retrain BODY -> job id
  curl -s -X POST -H 'Content-Type: application/json' --data "$1" "$base/v1/retrain" |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["job"])'
}
wait_job() {
  while :; do
    state=$(curl -s "$base/v1/jobs/$1" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
    [[ "$state" != running && "$state" != queued ]] && break
    sleep 2
  done
  curl -s "$base/v1/jobs/$1" >"$out/job-$1.json"
  /usr/bin/python3 - "$out/job-$1.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
ch, cp = j.get("challenger") or {}, j.get("champion") or {}
print(f"   {j['state']}: challenger v{ch.get('version','-')} score {ch.get('score','-')}, "
      f"champion v{cp.get('version','-')} score {cp.get('score','-')}; {j.get('reason','')}")
PY
}

echo "== job 1: must beat the champion by more than 1 (cannot): kept"
wait_job "$(job '{"min_delta": 1, "epochs": 1, "seed": 1}')"
echo "== job 2: cancelled while training"
id=$(job "{\"epochs\": $challenger_epochs, \"seed\": 2}")
sleep 15
curl -s -X DELETE "$base/v1/jobs/$id" >/dev/null
wait_job "$id"
echo "== job 3: $challenger_epochs epochs against the $champion_epochs-epoch champion"
t0=$(date +%s)
wait_job "$(job "{\"epochs\": $challenger_epochs, \"seed\": 3}")"
echo "   ($(($(date +%s) - t0)) s)"
sleep 5  # the reload after a promotion, and traffic on the new version
kill "$traffic_pid" 2>/dev/null; wait "$traffic_pid" 2>/dev/null || true; traffic_pid=""

total=$(wc -l <"$out/status.txt")
failed=$(awk '$2 != "200"' "$out/status.txt" | wc -l)
echo "== traffic: $total requests, $failed failed; versions seen in order: $(uniq "$out/versions.txt" | tr '\n' ' ')"
echo "== registry: $(v models describe accidents --json | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps(d.get("aliases", d)) if isinstance(d, dict) else d)')"
running=$(v runs list --json | /usr/bin/python3 -c 'import json,sys; print(sum(r["status"]=="running" for r in json.load(sys.stdin)["runs"]))')
echo "== runs left running: $running"
echo "(outputs in $out)"
[[ "$failed" -eq 0 && "$running" -eq 0 ]]
