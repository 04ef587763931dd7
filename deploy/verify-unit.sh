#!/usr/bin/env bash
# Checks deploy/entra-daemon.service (and its certificate drop-in) with
# `systemd-analyze verify`, and its exposure with `systemd-analyze security`
# (fails above 2.0). Usage: deploy/verify-unit.sh PATH-TO-BUILT-BINARY
#
# Exit 0 when checked, 1 when the unit is wrong, 3 when systemd-analyze
# cannot run here (the reason is printed).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
binary="$(realpath "${1:?usage: verify-unit.sh PATH-TO-BUILT-BINARY}")"

if ! command -v systemd-analyze >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null
  fi
fi
if ! command -v systemd-analyze >/dev/null; then
  echo "skipped: systemd-analyze is not installed and cannot be installed here (no apt-get or not root)"
  exit 3
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The unit names the installed binary; point it at the one just built so
# verify can check the command is executable.
sed "s#/usr/local/bin/entra-daemon#${binary}#" "$here/entra-daemon.service" >"$work/entra-daemon.service"
mkdir "$work/entra-daemon.service.d"
cp "$here/entra-daemon.service.d/certificate.conf" "$work/entra-daemon.service.d/"

# verify exits 0 on mere warnings (an unknown key is "ignoring"): any
# output at all is a failure.
if ! out="$(SYSTEMD_UNIT_PATH="$work:" systemd-analyze verify --man=no entra-daemon.service 2>&1)"; then
  if grep -qiE "failed to (connect|initialize)|no such file or directory.*(bus|/run/systemd)|not been booted" <<<"$out"; then
    echo "skipped: systemd-analyze verify cannot run in this environment: $out"
    exit 3
  fi
  echo "$out"
  exit 1
fi
if [ -n "$out" ]; then
  echo "$out"
  exit 1
fi
echo "systemd-analyze verify: OK"

score="$(systemd-analyze security --offline=yes "$work/entra-daemon.service" 2>&1 | grep -o 'exposure level for entra-daemon.service: [0-9.]*' || true)"
echo "systemd-analyze security: ${score:-no score}"
systemd-analyze security --offline=yes --threshold=20 "$work/entra-daemon.service" >/dev/null
