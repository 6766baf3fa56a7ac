#!/bin/sh
# What the fake OCI service needs (tests/oci/README.md): the openssl CLI for
# the test keys and Debian's python3-cryptography for the signature check
# (run with /usr/bin/python3; CI has no PyPI). Installs only what is missing.
set -eu
missing=""
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
/usr/bin/python3 -c 'import cryptography' >/dev/null 2>&1 || missing="$missing python3-cryptography"
[ -z "$missing" ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
$sudo apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
