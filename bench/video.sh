#!/usr/bin/env bash
# `vigil watch` on OpenCV's vtest.avi (768x576, 10 fps, people walking; Debian opencv-doc): for each detector
# (ssdlite320_mobilenet_v3_large, fasterrcnn_mobilenet_v3_large_320_fpn, the seeds' seeded weights from
# bench/seed_weights.py imported with `vigil weights import`) and 1 and 4 cameras (the same file looped per
# camera):
#   real-time: detect.fps 5 per camera -> detections/s achieved per camera, dropped slots, capture->tracks
#              latency p50/p95 (does vigil sustain N streams at 5 detections/s?);
#   capacity:  detect.fps 100 (as fast as the model goes) -> frames detected per second over all cameras,
#              frames per forward pass, ms per forward pass.
# Each run is followed by the seeds' way on the same weights and video (bench/video_ref.py: one Python process
# per camera, an OpenCV capture loop and torchvision one frame at a time), and the table gives vigil/Python.
# Then the face-mask cascade on a video of real faces (bench/video_ref.py make-face-video): vigil watch (Haar
# face cascade + the mask seed's small CNN on every face) against the seed's Python loop, ms per frame, and
# vigil watch with face-api.js's tiny and SSD face detectors in that cascade instead; and the
# face detectors' find rates on the mask dataset (tests/unit/video/face_cascade_test.cpp, every image).
# The machine is shared and noisy: compare within one run.
#
# Usage: bench/video.sh [build-dir]    env: THREADS (default: all cores), SECONDS_PER_RUN (default 20),
#   ONLY=cascade (the face-mask cascade and find rates only)
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
  [[ "${ONLY:-all}" == cascade ]] && break
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
        "$(tr -d '\n' <"$stats")" >>"$results"
      # The seeds' way, same weights and video: capacity is one camera read frame by frame as fast as it goes
      # (Python has no cross-camera batching to exploit), real time is one process per camera.
      echo "   ... the Python loop" >&2
      if [[ $mode == capacity ]]; then pycams=1 pyfps=0; else pycams=$cams pyfps=$fps; fi
      py="$(PYTHONPATH="$baseline" "$python" "$here/video_ref.py" detect --arch "${models[$key]}" \
        --weights "$work/$key.pth" --video "$vtest" --cams "$pycams" --fps "$pyfps" --seconds "$secs" \
        --threads "$threads" | tail -n 1)"  # the JSON line; the seed module may print before it
      printf '{"model": "%s", "cameras": %d, "mode": "%s", "python": %s}\n' "$key" "$cams" "$mode" "$py" \
        >>"$results"
    done
  done
done

# The face-mask cascade on real faces: every frame of a 640x480 video, vigil watch against the seed's loop.
masks="$(cd "$repo/.." && pwd)/shared/datasets/masks"
[ -d "$masks" ] || masks=/work/shared/datasets/masks
cascade_json=""
if [[ -d "$masks/with_mask" ]]; then
  echo "== face-mask cascade (Haar faces + the mask seed's small CNN), every frame of a 640x480 video" >&2
  "$python" "$here/video_ref.py" make-face-video "$work/faces.avi" --masks "$masks"
  "$python" "$here/models_ref.py" prepare "$work" mask_small_cnn
  "$vigil" --workspace "$ws" --log-level warn weights import "$work/mask_small_cnn/weights.pth" \
    --arch mask_small_cnn --class-names with_mask,without_mask --output "$work/mask.vgm" >/dev/null
  # The seed's face detector (Haar), paired with the seed's Python loop below; then face-api.js's two face
  # detectors (scripts/install-face-api.sh; skipped when absent), which find more of the masked faces.
  for det in opencv:haarcascade_frontalface_default faceapi:tiny_face_detector faceapi:ssd_mobilenetv1; do
    tag="${det#*:}"
    cat >"$work/cascade-$tag.yaml" <<EOF
cameras:
  faces:
    source: {url: $work/faces.avi, realtime: false}
    detect: {model: "$det", fps: 100}
    classify: {model: $work/mask.vgm, margin: 0.15}
EOF
    if "$vigil" --workspace "$ws" --threads "$threads" --log-level warn watch --config "$work/cascade-$tag.yaml" \
      --no-store --no-snapshots --quiet --stats-json "$work/cascade-$tag.json" >/dev/null 2>"$work/cascade-$tag.err"
    then
      printf '{"detector": "%s", "stats": %s}\n' "$det" "$(tr -d '\n' <"$work/cascade-$tag.json")" \
        >>"$work/cascades.jsonl"
    else
      echo "   $det: skipped ($(tail -n 1 "$work/cascade-$tag.err"))" >&2
    fi
  done
  cp "$work/cascade-haarcascade_frontalface_default.json" "$work/cascade.json"
  py="$("$python" "$here/video_ref.py" cascade --weights "$work/mask_small_cnn/weights.pth" \
    --video "$work/faces.avi" --threads "$threads" | tail -n 1)"
  cascade_json="$work/cascade_pair.json"
  printf '{"vigil": %s, "python": %s}\n' "$(tr -d '\n' <"$work/cascade.json")" "$py" >"$cascade_json"
fi

"$python" - "$results" "$threads" "$cascade_json" "${cascade_json:+$work/cascades.jsonl}" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
vig = {(r["model"], r["cameras"], r["mode"]): r["stats"] for r in rows if "stats" in r}
pyt = {(r["model"], r["cameras"], r["mode"]): r["python"] for r in rows if "python" in r}
print(f"\nvtest.avi (768x576, 10 fps), threads {sys.argv[2]}; latency = capture -> result; "
      "Python = one process per camera, one frame at a time")
head = (f"{'model':9} {'cams':>4} {'mode':9} {'who':6} {'det/s/cam':>9} {'det/s all':>9} {'dropped':>8} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'frames/pass':>11} {'vigil/Py':>8}")
print(head)
print("-" * len(head))
for key, s in vig.items():
    cams = s["cameras"]
    seconds = s["seconds"]
    detected = sum(c["detected"] for c in cams)
    m = s["models"][0]
    per_pass = m["frames"] / m["batches"] if m["batches"] else 0
    p50 = sum(c["latency_p50_ms"] for c in cams) / len(cams)
    p95 = max(c["latency_p95_ms"] for c in cams)
    v_rate = detected / seconds
    print(f"{key[0]:9} {key[1]:4d} {key[2]:9} {'vigil':6} {v_rate / len(cams):9.2f} {v_rate:9.2f} "
          f"{sum(c['dropped'] for c in cams):8d} {p50:7.0f} {p95:7.0f} {per_pass:11.2f}")
    p = pyt.get(key)
    if p:
        pc = p["cameras"]
        p_rate = sum(c["detected"] / c["seconds"] for c in pc)
        p50 = sum(c["latency_p50_ms"] for c in pc) / len(pc)
        p95 = max(c["latency_p95_ms"] for c in pc)
        ratio = v_rate / p_rate if p_rate else float("inf")
        print(f"{'':9} {len(pc):4d} {'':9} {'Python':6} {p_rate / len(pc):9.2f} {p_rate:9.2f} "
              f"{sum(c['dropped'] for c in pc):8d} {p50:7.0f} {p95:7.0f} {1:11.2f} {ratio:8.2f}x")
if len(sys.argv) > 3 and sys.argv[3]:
    pair = json.load(open(sys.argv[3]))
    v, p = pair["vigil"], pair["python"]
    frames = sum(c["detected"] for c in v["cameras"])
    v_ms = 1000 * v["seconds"] / max(1, frames)
    print(f"\nface-mask cascade, every frame of a 640x480 video of real faces ({frames} frames):")
    print(f"  vigil  {v_ms:7.1f} ms/frame")
    print(f"  Python {p['ms_per_frame']:7.1f} ms/frame ({p['frames']} frames, {p['faces']} faces)   "
          f"vigil/Python speed {p['ms_per_frame'] / v_ms:.2f}x")
    others = sys.argv[4] if len(sys.argv) > 4 else ""
    if others:
        print("  vigil watch by face detector (every face found is cropped and classified by the same CNN):")
        for line in open(others):
            r = json.loads(line)
            s = r["stats"]
            n = sum(c["detected"] for c in s["cameras"])
            m = s["models"][0]
            print(f"    {r['detector']:40} {1000 * s['seconds'] / max(1, n):7.1f} ms/frame  "
                  f"{m.get('crops', 0):5d} faces classified in {n} frames")
PY

face_test="$build/tests/unit_video_face_cascade_test"
if [[ -x "$face_test" ]]; then
  echo
  echo "face cascades on the mask dataset (every image pasted into a 480x360 frame):"
  VIGIL_FACE_RATES_ALL=1 VIGIL_SHARED_DIR="$repo/../shared" "$face_test" 2>&1 | grep '\[face rates\]' || true
fi
