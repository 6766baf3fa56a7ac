#!/usr/bin/env bash
# Installs what the OpenStack tests need: the real Glance API server and
# Keystone from Debian (Python 3.11 from /usr/bin/python3, run by
# tests/openstack/emulators.py with sqlite and a file store; no service is
# started or enabled here). Safe to re-run: installs only what is missing.
set -euo pipefail
packages=(glance-api keystone python3-keystonemiddleware)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]} (OpenStack Glance and Keystone for tests/openstack)" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
