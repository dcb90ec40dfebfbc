#!/usr/bin/env bash
# Installs the face detectors `vigil watch` runs as "faceapi:tiny_face_detector" / "faceapi:ssd_mobilenetv1":
# the TF.js weight files of the npm package @vladmandic/face-api (MIT), pinned to one version and checked by
# SHA-256, copied to one folder (default /usr/local/share/vigil/face-api, where vigil looks unless
# VIGIL_FACEAPI_DIR says otherwise). The weights are never committed to the repository.
#
# Usage: scripts/install-face-api.sh [DEST_DIR]      (install-deps.sh runs it; root or sudo for /usr/local)
# Idempotent: files already present with the right hashes are left alone and nothing is fetched.
set -euo pipefail

VERSION="1.7.15"
PACKAGE="@vladmandic/face-api@${VERSION}"
DEST="${1:-/usr/local/share/vigil/face-api}"
# file -> sha256 of @vladmandic/face-api 1.7.15's package/model/<file>
declare -A SHA256=(
  [tiny_face_detector_model.bin]=b7503ce7df31039b1c43316a9b865cab6a70dd748cc602d3fa28b551503c3871
  [tiny_face_detector_model-weights_manifest.json]=5d1af4849ac48d5b985f4a9b16010c512353ddd6fcc63d50fd0bc9e9e64296e5
  [ssd_mobilenetv1_model.bin]=2835640602d53718aa6ae9a42896327eaa21beefed056c218d32ca7d79e1e2f8
  [ssd_mobilenetv1_model-weights_manifest.json]=888f744dffbc84f5f060d1f8427d9742341943a2dfaaf9205d10029b7e7a2955
)

all_present() {
  local f
  for f in "${!SHA256[@]}"; do
    [ -f "$DEST/$f" ] && echo "${SHA256[$f]}  $DEST/$f" | sha256sum --check --status || return 1
  done
}

if all_present; then
  echo "install-face-api: $PACKAGE weights present in $DEST"
  exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "install-face-api: npm is needed to fetch $PACKAGE" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# npm pack checks the tarball against the registry's integrity hash; the files are checked again below.
(cd "$work" && npm pack --silent "$PACKAGE" >/dev/null)
tar -xzf "$work"/vladmandic-face-api-"${VERSION}".tgz -C "$work" package/model package/LICENSE
for f in "${!SHA256[@]}"; do
  if ! echo "${SHA256[$f]}  $work/package/model/$f" | sha256sum --check --status; then
    echo "install-face-api: $f of $PACKAGE does not have the pinned SHA-256 ${SHA256[$f]}; nothing installed" >&2
    exit 1
  fi
done

SUDO=""
if [ ! -w "$(dirname "$DEST")" ] && [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
$SUDO mkdir -p "$DEST"
for f in "${!SHA256[@]}"; do
  $SUDO install -m 0644 "$work/package/model/$f" "$DEST/$f"
done
$SUDO install -m 0644 "$work/package/LICENSE" "$DEST/LICENSE"
echo "install-face-api: installed $PACKAGE's face detectors into $DEST"
