#!/usr/bin/env bash
# Installs entra-daemon as a systemd service on this host (run as root):
#   cargo build --release && sudo deploy/install.sh target/release/entra-daemon
# Idempotent: an existing configuration and existing credentials are kept.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
binary="${1:?usage: install.sh PATH-TO-BUILT-BINARY}"
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }

install -m 0755 "$binary" /usr/local/bin/entra-daemon
install -d -m 0755 /usr/local/share/doc/entra-daemon
install -m 0644 "$here/../README.md" /usr/local/share/doc/entra-daemon/README.md

# The configuration (no secret in it: it names the credentials' paths).
install -d -m 0755 /etc/entra-daemon
if [ ! -e /etc/entra-daemon/entra-daemon.toml ]; then
  install -m 0644 "$here/../entra-daemon.toml" /etc/entra-daemon/entra-daemon.toml
  echo "edit /etc/entra-daemon/entra-daemon.toml: [plumm] database, [entra] client_id, [http]"
fi

# Credentials: root-only files systemd hands to the service (LoadCredential=).
install -d -m 0700 /etc/entra-daemon/credentials
key=/etc/entra-daemon/credentials/store-signing-key
if [ ! -e "$key" ]; then
  (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$key")
  echo "created $key: give Plumm's Store the same key"
fi
secret=/etc/entra-daemon/credentials/client-secret
if [ ! -e "$secret" ]; then
  echo "write the app's client secret to $secret (mode 0600), or use a certificate:"
  echo "  see $here/entra-daemon.service.d/certificate.conf"
fi

# The service runs as a dynamic user in Plumm's group, which must be able
# to write Plumm's database and its folder (SQLite's WAL).
if ! getent group plumm >/dev/null; then
  echo "note: no 'plumm' group: create it, or change SupplementaryGroups= in the unit" >&2
fi

install -m 0644 "$here/entra-daemon.service" /etc/systemd/system/entra-daemon.service
systemctl daemon-reload
echo "then: systemctl enable --now entra-daemon && entra-daemon --config /etc/entra-daemon/entra-daemon.toml status"
