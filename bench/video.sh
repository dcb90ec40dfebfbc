#!/usr/bin/env bash
# `vigil watch` on OpenCV's vtest.avi (768x576, 10 fps, people walking; Debian opencv-doc): for each detector
# (ssdlite320_mobilenet_v3_large, fasterrcnn_mobilenet_v3_large_320_fpn, the seeds' seeded weights from
# bench/seed_weights.py imported with `vigil weights import`) and 1 and 4 cameras (the same file looped per
# camera):
#   real-time: detect.fps 5 per camera -> detections/s achieved per camera, dropped slots, capture->tracks
#              latency p50/p95 (does vigil sustain N streams at 5 detections/s?);
#   capacity:  detect.fps 100 (as fast as the model goes) -> frames detected per second over all cameras,
#              frames per forward pass, ms per forward pass.
# Then the face cascades' find rates on the mask dataset (tests/unit/video/face_cascade_test.cpp, every image).
# The machine is shared and noisy: compare within one run.
#
# Usage: bench/video.sh [build-dir]    env: THREADS (default: all cores), SECONDS_PER_RUN (default 20)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
build="${1:-$repo/build}"
vigil="$build/apps/vigil/vigil"
python=/usr/bin/python3
threads="${THREADS:-$(nproc)}"
secs="${SECONDS_PER_RUN:-20}"
vtest=/usr/share/doc/opencv-doc/examples/data/vtest.avi
baseline="$(cd "$repo/.." && pwd)/shared/bench/baseline"
[ -d "$baseline" ] || baseline=/work/shared/bench/baseline

[[ -x "$vigil" ]] || { echo "no $vigil: build first (ninja -C $build vigil)" >&2; exit 2; }
[[ -f "$vtest" ]] || { echo "no $vtest: install opencv-doc (scripts/install-deps.sh)" >&2; exit 2; }
"$python" -c 'import torchvision' 2>/dev/null || { echo "$python lacks torchvision (scripts/install-deps.sh)" >&2; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
ws="$work/ws"
results="$work/results.jsonl"
: >"$results"

declare -A models=([ssdlite]=ssdlite320_mobilenet_v3_large [frcnn320]=fasterrcnn_mobilenet_v3_large_320_fpn)
for key in ssdlite frcnn320; do
  arch="${models[$key]}"
  PYTHONPATH="$baseline" "$python" "$here/seed_weights.py" "$arch" "$work/$key.pth" >/dev/null
  "$vigil" --workspace "$ws" --log-level warn weights import "$work/$key.pth" --arch "$arch" --num-classes 2 \
    --output "$work/$key.vgm" >/dev/null
done

# cameras.yaml with N cameras of vtest.avi at detect.fps F.
write_config() {
  local model="$1" cams="$2" fps="$3" out="$4"
  {
    echo "cameras:"
    for ((i = 1; i <= cams; i++)); do
      cat <<EOF
  cam$i:
    source: {url: $vtest, loop: true}
    detect: {model: $model, fps: $fps, score_threshold: 0.3}
EOF
    done
  } >"$out"
}

for key in ssdlite frcnn320; do
  for cams in 1 4; do
    for mode in realtime capacity; do
      fps=5
      [[ $mode == capacity ]] && fps=100
      cfg="$work/$key-$cams-$mode.yaml"
      stats="$work/$key-$cams-$mode.json"
      write_config "$work/$key.vgm" "$cams" "$fps" "$cfg"
      echo "== $key, $cams camera(s), $mode (detect.fps $fps, $secs s, threads $threads)" >&2
      "$vigil" --workspace "$ws" --threads "$threads" --log-level warn watch --config "$cfg" --duration "$secs" \
        --no-store --no-snapshots --quiet --stats-json "$stats" >/dev/null
      printf '{"model": "%s", "cameras": %d, "mode": "%s", "stats": %s}\n' "$key" "$cams" "$mode" \
        "$(cat "$stats")" >>"$results"
    done
  done
done

"$python" - "$results" "$threads" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
print(f"\nvigil watch on vtest.avi (768x576), threads {sys.argv[2]}; latency = capture -> tracks")
head = (f"{'model':9} {'cams':>4} {'mode':9} {'det/s/cam':>9} {'det/s all':>9} {'dropped':>8} {'p50 ms':>7} "
        f"{'p95 ms':>7} {'frames/pass':>11} {'ms/pass':>8}")
print(head)
print("-" * len(head))
for r in rows:
    s = r["stats"]
    cams = s["cameras"]
    seconds = s["seconds"]
    detected = sum(c["detected"] for c in cams)
    m = s["models"][0]
    per_pass = m["frames"] / m["batches"] if m["batches"] else 0
    ms_pass = 1000 * m["detect_seconds"] / m["batches"] if m["batches"] else 0
    p50 = sum(c["latency_p50_ms"] for c in cams) / len(cams)
    p95 = max(c["latency_p95_ms"] for c in cams)
    print(f"{r['model']:9} {r['cameras']:4d} {r['mode']:9} {detected / seconds / len(cams):9.2f} "
          f"{detected / seconds:9.2f} {sum(c['dropped'] for c in cams):8d} {p50:7.0f} {p95:7.0f} "
          f"{per_pass:11.2f} {ms_pass:8.1f}")
PY

face_test="$build/tests/unit_video_face_cascade_test"
if [[ -x "$face_test" ]]; then
  echo
  echo "face cascades on the mask dataset (every image pasted into a 480x360 frame):"
  VIGIL_FACE_RATES_ALL=1 VIGIL_SHARED_DIR="$repo/../shared" "$face_test" 2>&1 | grep '\[face rates\]' || true
fi
