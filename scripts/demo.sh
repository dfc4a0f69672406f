#!/usr/bin/env bash
# Runs the demo: installs what is missing (scripts/setup.sh), builds the package into pkg/, then
# starts Wharf's reference server (server/, embedded SQLite in memory) serving the www/ demo app
# and pkg/ on 127.0.0.1:${PORT:-8080}. It prints the URL; Ctrl-C stops it.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
case ":$PATH:" in *":$CARGO_BIN:"*) ;; *) export PATH="$CARGO_BIN:$PATH" ;; esac

bash scripts/setup.sh
node scripts/build.mjs
exec cargo run -q -p wharf-server -- --addr "127.0.0.1:${PORT:-8080}" --www www --pkg pkg
