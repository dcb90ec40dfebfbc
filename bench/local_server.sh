# shellcheck shell=bash disable=SC2034,SC2054,SC2154  # sets and reads the sourcing script's variables
# Shared by bench/prediction_log.sh and bench/memory_floor.sh (sourced after `here`, `repo` and `build` are set):
# the vigil binary and wrk checked, a work folder removed on exit with any server still running, a seeded
# model of an architecture imported as a vigil model file, a 640x480 JPEG, and `vigil serve` started on a free
# loopback port.
vigil="$build/apps/vigil/vigil"
[[ -x "$vigil" ]] || { echo "no $vigil: build first" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk missing (scripts/install-deps.sh)" >&2; exit 2; }

work="$(mktemp -d)"
server_pid=""
cleanup() { [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# prepare_served_model ARCH: ARCH with seeded weights (bench/models_ref.py) as $work/mask.vgm (the mask CNN with
# the seed's class names), and the request image $work/img.jpg (the baseline's photograph, else smoothed noise).
prepare_served_model() {
  local arch="$1" names=()
  PYTHONPATH="$repo/tests/parity" /usr/bin/python3 "$here/models_ref.py" prepare "$work" "$arch" >/dev/null
  [[ $arch == mask_small_cnn ]] && names=(--class-names with_mask,without_mask)
  "$vigil" --workspace "$work/ws0" --log-level warn weights import "$work/$arch/weights.pth" \
    --arch "$arch" "${names[@]}" --output "$work/mask.vgm" >/dev/null
  /usr/bin/python3 "$here/seed_weights.py" --image-only "$work/img.jpg" 2>/dev/null ||
    /usr/bin/python3 -c "
import numpy as np, cv2; rng = np.random.default_rng(0)
cv2.imwrite('$work/img.jpg', cv2.GaussianBlur(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8), (0, 0), 3))"
}

# start_server LOG [vigil args... serve args...]: `vigil ARGS --port 0 --port-file ...` in the background,
# output to LOG; sets server_pid and port once the port file appears (at most 20 s), exits naming LOG if not.
start_server() {
  local log="$1"
  shift
  rm -f "$work/port"
  "$vigil" "$@" --port 0 --port-file "$work/port" >"$log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 200); do [[ -s "$work/port" ]] && break; sleep 0.1; done
  [[ -s "$work/port" ]] || { echo "vigil serve did not start ($log):" >&2; cat "$log" >&2; exit 1; }
  port="$(cat "$work/port")"
}
