#!/usr/bin/env bash
# Browser test of the web UI: run.sh VIGIL_BINARY BUILD_DIR [SEED_STORE_BINARY]
#
# Installs playwright-core (tests/e2e/package-lock.json) into BUILD_DIR/e2e-node, makes a small seeded
# detector (gen_model.py with Debian's python3-torchvision, imported with `vigil weights import`) and a
# synthetic image (`vigil data synth`) in BUILD_DIR/e2e-data, fills a second workspace with runs and a
# registered model (SEED_STORE_BINARY, tests/e2e/seed_store.cpp; default BUILD_DIR/tests/e2e_seed_store),
# then runs ui_test.mjs against `vigil serve`, `vigil ui` and `vigil serve --cameras` (on opencv-doc's vtest.avi,
# looped, with opencv-data's full-body cascade; that case is left out when either is missing) with screenshots
# and the server logs in BUILD_DIR/e2e-artifacts. BUILD_DIR/e2e-data/ops holds the workspace of the Datasets,
# Monitoring and Retrain checks: a small class-folder dataset ingested and split ("shapes", also the drift
# reference and the retrain job's data), a second one zipped for the upload form, a file that only claims to be
# an archive, and the retrain config (retrain.yaml).
# Exit 0 pass, 1 fail, 77 skip (no node, chromium, torchvision, or npm packages while offline).
# VIGIL_E2E_WEB_DIR=DIR serves the UI from DIR (--web-dir) instead of the binary's embedded copy.
set -euo pipefail

if [[ $# -lt 2 || $# -gt 3 ]]; then
  echo "usage: $0 VIGIL_BINARY BUILD_DIR [SEED_STORE_BINARY]" >&2
  exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source_dir="$(cd "$here/../.." && pwd)"
vigil="$(realpath "$1")"
build_dir="$(realpath -m "$2")"
seed_store="${3:-$build_dir/tests/e2e_seed_store}"
node_dir="$build_dir/e2e-node"
data_dir="$build_dir/e2e-data"
artifacts="$build_dir/e2e-artifacts"
python=/usr/bin/python3
chromium="${CHROMIUM:-/usr/bin/chromium}"

skip() {
  echo "SKIP: $*"
  exit 77
}

command -v node > /dev/null || skip "node is missing (Debian package nodejs)"
command -v npm > /dev/null || skip "npm is missing (Debian package npm)"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[[ "$node_major" -ge 20 ]] || skip "node $(node --version) is older than 20, which playwright-core needs"
[[ -x "$chromium" ]] || skip "$chromium is missing (Debian package chromium)"
[[ -x "$vigil" ]] || { echo "FAIL: no vigil binary at $1"; exit 1; }
[[ -x "$seed_store" ]] || { echo "FAIL: no $seed_store: build the e2e_seed_store target (ninja e2e_seed_store)"; exit 1; }
"$python" -c 'import torchvision' 2> /dev/null || skip "$python cannot import torchvision (Debian package python3-torchvision)"

# npm ci only when the lock file changed since the last install (keeps reruns fast and offline-proof).
mkdir -p "$node_dir"
if ! cmp -s "$here/package-lock.json" "$node_dir/package-lock.json" || [[ ! -d "$node_dir/node_modules/playwright-core" ]]; then
  cp "$here/package.json" "$here/package-lock.json" "$node_dir/"
  if ! (cd "$node_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error); then
    rm -f "$node_dir/package-lock.json"
    skip "npm ci of playwright-core failed (offline?)"
  fi
fi

# A synthetic image and a seeded, calibrated detector whose scores spread around 0.5.
rm -rf "$data_dir"
mkdir -p "$data_dir"
"$vigil" --workspace "$data_dir/ws" data synth "$data_dir/synth" --task detection --images 1 --classes 2 \
  --seed 7 --width 480 --height 360 > "$data_dir/synth.log" 2>&1 || { cat "$data_dir/synth.log"; echo "FAIL: vigil data synth"; exit 1; }
image="$data_dir/synth/images/000000.jpg"
"$python" "$here/gen_model.py" "$data_dir/weights.pth" > "$data_dir/gen.log" 2>&1 \
  || { cat "$data_dir/gen.log"; echo "FAIL: gen_model.py"; exit 1; }
model="$data_dir/e2e-guns.vgm"  # served as "e2e-guns" (the file's stem)
"$vigil" --workspace "$data_dir/ws" weights import "$data_dir/weights.pth" \
  --arch fasterrcnn_mobilenet_v3_large_320_fpn --class-names gun,knife --output "$model" \
  > "$data_dir/import.log" 2>&1 || { cat "$data_dir/import.log"; echo "FAIL: vigil weights import"; exit 1; }
rm -f "$data_dir/weights.pth"  # 76 MB; the model file has the weights

# Runs and a registered model for the Experiments and Models pages, written through the real store.
tracking_ws="$data_dir/tracking-ws"
"$seed_store" "$tracking_ws" > "$tracking_ws.json" 2> "$data_dir/seed.log" \
  || { cat "$data_dir/seed.log"; echo "FAIL: $seed_store"; exit 1; }

# Datasets, Monitoring and Retrain: a workspace with a stored dataset, and the files the upload form sends.
ops="$data_dir/ops"
ops_vigil() {
  "$vigil" --workspace "$ops/ws" "$@" >> "$ops/setup.log" 2>&1 || { cat "$ops/setup.log"; echo "FAIL: vigil $*"; exit 1; }
}
mkdir -p "$ops"
ops_vigil data synth "$ops/shapes" --task classification --images 40 --width 48 --height 48 --classes 2 --seed 2
ops_vigil data ingest "$ops/shapes" --name shapes
ops_vigil data split shapes --val 0.3 --seed 1
ops_vigil data synth "$ops/more" --task classification --images 12 --width 64 --height 64 --classes 2 --seed 5
(cd "$ops/more" && "$python" -c 'import shutil; shutil.make_archive("../more", "zip", ".")')
printf 'this is not a zip archive\n' > "$ops/broken.zip"
cp "$here/retrain.yaml" "$ops/retrain.yaml"

VIGIL_E2E_NODE_DIR="$node_dir" CHROMIUM="$chromium" \
  VIGIL_E2E_CAMERA_VIDEO="${VIGIL_E2E_CAMERA_VIDEO:-/usr/share/doc/opencv-doc/examples/data/vtest.avi}" \
  exec node "$here/ui_test.mjs" "$vigil" "$model" "$image" "$artifacts" "$tracking_ws" "$ops"
