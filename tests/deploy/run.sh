#!/usr/bin/env bash
# Checks of deploy/: run.sh VIGIL_BINARY BUILD_DIR
# The Kubernetes manifests and compose.yaml against their schemas (check_deploy.mjs, npm packages pinned by
# package-lock.json, installed into BUILD_DIR/deploy-node), the nginx example with `nginx -t`, the Prometheus
# config with `promtool check config`. Exit 0 pass, 1 fail, 77 skip (no node/npm, or npm offline).
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: $0 VIGIL_BINARY BUILD_DIR" >&2; exit 2; }
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source_dir="$(cd "$here/../.." && pwd)"
vigil="$(realpath "$1")"
node_dir="$(realpath -m "$2")/deploy-node"
skip() { echo "SKIP: $*"; exit 77; }

# nginx: the shipped file with the upstream pointed at loopback (compose's service names resolve only there).
if command -v nginx > /dev/null || [[ -x /usr/sbin/nginx ]]; then
  nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
  conf_dir="$(mktemp -d)"
  trap 'rm -rf "$conf_dir"' EXIT
  cp "$source_dir/deploy/nginx/nginx.conf" "$conf_dir/"
  sed -E 's/server vigil-[0-9]+:8080/server 127.0.0.1:8080/' "$source_dir/deploy/nginx/vigil-upstream.conf" \
    > "$conf_dir/vigil-upstream.conf"
  "$nginx_bin" -t -q -p "$conf_dir" -c "$conf_dir/nginx.conf" -e stderr -g "pid $conf_dir/nginx.pid;" \
    || { echo "FAIL: nginx -t deploy/nginx/nginx.conf"; exit 1; }
  echo "ok: nginx -t deploy/nginx/nginx.conf"
else
  echo "note: nginx is not installed; deploy/nginx not checked"
fi
if command -v promtool > /dev/null; then
  promtool check config "$source_dir/deploy/prometheus/prometheus.yml" > /dev/null \
    || { echo "FAIL: promtool check config deploy/prometheus/prometheus.yml"; exit 1; }
  echo "ok: promtool check config deploy/prometheus/prometheus.yml"
fi

command -v node > /dev/null || skip "node is missing (Debian package nodejs)"
command -v npm > /dev/null || skip "npm is missing (Debian package npm)"
mkdir -p "$node_dir"
if ! cmp -s "$here/package-lock.json" "$node_dir/package-lock.json" || [[ ! -d "$node_dir/node_modules/kubernetes-models" ]]; then
  cp "$here/package.json" "$here/package-lock.json" "$node_dir/"
  if ! (cd "$node_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error); then
    rm -f "$node_dir/package-lock.json"
    skip "npm ci of the schema packages failed (offline?)"
  fi
fi
# ES modules resolve packages beside the script: run a copy that lives next to node_modules.
cp "$here/check_deploy.mjs" "$node_dir/"
exec node "$node_dir/check_deploy.mjs" "$source_dir" "$vigil"
