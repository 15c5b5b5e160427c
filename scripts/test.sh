#!/usr/bin/env bash
# Run the whole test suite (real SoftHSM2 tokens, the AWS stand-in over HTTP, the CLI as a
# subprocess). Sets the checkout up first if needed. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/pytest ] || scripts/setup.sh
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
