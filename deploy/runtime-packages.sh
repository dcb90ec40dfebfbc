#!/usr/bin/env bash
# The Debian packages that hold the shared libraries a binary loads (ldd, then dpkg -S), one per line: the
# container's runtime stage installs exactly these instead of the -dev packages the build needed.
set -euo pipefail
binary=${1:?usage: runtime-packages.sh BINARY}
mapfile -t libs < <(ldd "$binary" | awk '/=> \// {print $3}')
# Merged /usr: dpkg may have recorded a library under /lib or /usr/lib, by its own name or its link target's.
candidates=()
for lib in "${libs[@]}"; do
  for f in "$lib" "$(readlink -f "$lib")"; do candidates+=("$f" "/usr${f#/usr}" "${f#/usr}"); done
done
# One dpkg query for all of them (a query per library takes minutes); misses are expected, so no exit status.
owners=$(dpkg -S "${candidates[@]}" 2>/dev/null || true)
for lib in "${libs[@]}"; do
  found=false
  for f in "$lib" "$(readlink -f "$lib")"; do
    for c in "$f" "/usr${f#/usr}" "${f#/usr}"; do
      grep -qF ": $c"$'\n' <<< "$owners"$'\n' && found=true
    done
  done
  $found || { echo "runtime-packages: no Debian package owns $lib" >&2; exit 1; }
done
sed 's/:.*//' <<< "$owners" | tr ', ' '\n\n' | sed '/^$/d' | sort -u
