#!/usr/bin/env bash
# The one place that installs system packages for vigil. Idempotent: packages already present are skipped,
# so a second run costs a dpkg query and nothing else. Works as root, uses sudo otherwise.
set -euo pipefail

packages=(
  # build
  build-essential cmake ninja-build pkg-config git ca-certificates
  # LLVM's linker: links a LibTorch test binary ~5x faster than GNU ld (about 100 of them in `make test`)
  lld
  # ML core; without libopenblas0-pthread Debian falls back to the reference BLAS (~30x slower matmul)
  libtorch-dev libopenblas0-pthread libopenblas-dev
  # distributed training (vigil train --nproc / RANK+WORLD_SIZE): Debian's LibTorch has c10d's ProcessGroupGloo
  # compiled in, but its header includes gloo's, which only this package ships
  libgloo-dev
  # images, video, drawing; opencv-data has the face cascades, opencv-doc ships vtest.avi (people walking, the
  # video tests' input), ffmpeg serves RTSP on loopback for the stream tests and writes test videos
  libopencv-dev opencv-data opencv-doc ffmpeg
  # libjpeg-turbo's headers: JPEG decodes straight to BGR (OpenCV 4.6 decodes to RGB and swaps every pixel)
  libjpeg62-turbo-dev
  # HTTP, JSON, YAML, CLI, logging
  libcpp-httplib-dev libpugixml-dev nlohmann-json3-dev libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev
  # store: SQLite embedded by default; libpq for `--store postgresql://...` (shared by several machines)
  libsqlite3-dev sqlite3 libpq-dev
  # dataset archives (.zip, .tar.gz, ...) unpacked as hostile input
  libarchive-dev
  # hashing (sha256 for the content store, md5 for DVC compatibility)
  libssl-dev
  # HTTP client: published weights (torchvision:ARCH/WEIGHTS) downloaded into torch.hub's cache
  libcurl4-openssl-dev
  # plots
  libmgl-dev
)
# `install-deps.sh --build` stops here: what compiling vigil needs (the container image's build stage, which also
# needs Node.js below for the web UI). Everything after is for tests, benchmarks and development.
test_packages=(
  # development: compiler cache, formatter
  ccache clang-format
  # replicas: the nginx example (deploy/nginx) is load-tested behind a real nginx on loopback
  nginx
  # the PostgreSQL server, so the store tests run against a real throwaway cluster (initdb + pg_ctl)
  postgresql
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # reference implementations for parity tests and benchmarks (never on a user's path)
  python3 python3-torch python3-torchvision python3-numpy python3-pil
  # drift statistics are checked against scipy's (tests only)
  python3-scipy
  # DVC writes its YAML with ruamel: the pipeline tests compare vigil's dvc.lock writer against it
  python3-ruamel.yaml
  # serving tests: a real browser for the UI test, promtool to check /metrics
  chromium prometheus
  # serving benchmarks: the seeds' FastAPI stack side by side, load generators
  wrk curl python3-locust python3-fastapi python3-uvicorn python3-multipart
  # bench/video.sh: the seeds' way of watching video (an OpenCV capture loop + torchvision), side by side
  python3-opencv
)
build_only=false
[ "${1:-}" = "--build" ] && build_only=true
$build_only || packages+=("${test_packages[@]}")
# The web UI's front-end packages and the browser test's driver come from npm at build time; a Node.js that
# ships its own npm (e.g. NodeSource's) is kept, otherwise Debian's is installed.
if ! command -v node >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
else
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

$build_only && exit 0
# Not a Debian package: the face detectors of `vigil watch` (faceapi:*), the pinned npm package's TF.js
# weights checked by SHA-256 (npm comes with Node.js above).
"$(dirname "$0")/install-face-api.sh"
