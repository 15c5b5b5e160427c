#!/usr/bin/env bash
# Set up a development checkout on Debian/Ubuntu with Python 3.11+:
# SoftHSM2, OpenSC and OpenSSL from apt (only when missing), then .venv with pki-ceremony
# installed editable with its test extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
[ -e /usr/lib/softhsm/libsofthsm2.so ] || ls /usr/lib/*/softhsm/libsofthsm2.so >/dev/null 2>&1 || need_apt+=(softhsm2)
command -v pkcs11-tool >/dev/null || need_apt+=(opensc)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v dot >/dev/null || need_apt+=(graphviz)  # SVG pictures of the step DAG (pki-ceremony graph)
python3 -c 'import ensurepip, venv' 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing with apt-get: ${need_apt[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

python3 - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"pki-ceremony needs Python 3.11 or newer, this is {sys.version.split()[0]}")
PY
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
echo "ready: .venv/bin/pki-ceremony --help"
