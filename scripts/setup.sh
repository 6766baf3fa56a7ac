#!/usr/bin/env bash
# Installs what building and testing cloud_helper needs (Debian packages),
# then configures and builds build/. Safe to re-run: installs only what is
# missing, rebuilds incrementally.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

packages=(
  build-essential cmake pkg-config
  libssl-dev zlib1g-dev libcurl4-openssl-dev libyaml-cpp-dev libcxxopts-dev
  nlohmann-json3-dev libdeflate-dev libisal-dev libarchive-dev libpugixml-dev libgtest-dev
  qemu-utils e2fsprogs pigz tar gzip coreutils time packer
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Azurite and the Azure Storage SDK for the Azure tests (versions pinned in
# tests/azure/package.json and package-lock.json).
if [ ! -x "$top/tests/azure/node_modules/.bin/azurite-blob" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "setup: installing nodejs npm (Azurite needs them)" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
  echo "setup: npm install --prefix tests/azure (Azurite, @azure/storage-blob)" >&2
  npm install --prefix "$top/tests/azure" --no-audit --no-fund >/dev/null
fi

# What a cloud's tests need beyond the above (its emulator's packages, say):
# tests/<cloud>/setup.sh, when present, installs it the same way.
for hook in "$top"/tests/*/setup.sh; do
  [ -f "$hook" ] && bash "$hook"
done

cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$top/build" -j"$(nproc)"
