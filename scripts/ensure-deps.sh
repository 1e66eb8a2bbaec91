#!/usr/bin/env bash
# Installs what `make test` needs on a fresh Debian machine, or says in one line what is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command -v go >/dev/null || { echo "kfp-box: Go is missing: install Go 1.26 (https://go.dev/dl)"; exit 1; }
if [[ -x $here/ensure-containerd.sh ]] || [[ -f $here/ensure-containerd.sh ]]; then
  bash "$here/ensure-containerd.sh"
fi
bash "$here/ensure-python.sh"
sh "$here/ensure-postgres.sh"
sh "$here/ensure-mariadb.sh"
sh "$here/ensure-chromium.sh"
sh "$here/ensure-packaging.sh"
bash "$here/python-test-image.sh"
bash "$here/ensure-kubectl.sh"
