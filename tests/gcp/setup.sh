#!/bin/sh
# What the fake Google Cloud needs (tests/gcp/README.md): python3 (stdlib
# only) and the openssl CLI, which makes the test service account's key.
# Installs only what is missing.
set -eu
command -v openssl >/dev/null 2>&1 && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends openssl
