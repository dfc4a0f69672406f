#!/usr/bin/env bash
# Runs the Wharf demo: installs what is missing, builds pkg/, then serves www/ (the demo page) and
# pkg/ on http://127.0.0.1:${PORT:-8080}/ until Ctrl-C.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
case ":$PATH:" in *":$CARGO_BIN:"*) ;; *) export PATH="$CARGO_BIN:$PATH" ;; esac

bash scripts/setup.sh
node scripts/build.mjs
exec node scripts/serve.mjs --port "${PORT:-8080}"
