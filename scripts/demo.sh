#!/usr/bin/env bash
# Runs the demo: installs what is missing (scripts/setup.sh), builds the package into pkg/, builds
# the demo PWA (www/: Vite + React) against the package as a user would get it (npm pack pkg/,
# install the tarball into www/, vite build into www/dist; www/tools/build-demo.mjs, which skips
# what is up to date), then starts Wharf's reference server (server/, embedded SQLite in memory)
# serving www/dist and pkg/ on 127.0.0.1:${PORT:-8080}, with fault injection configured but
# paused (the app's "Flaky server" toggle switches it on). It prints the URL; Ctrl-C stops it.
# WHARF_SKIP_BUILD=1 skips `node scripts/build.mjs` and uses pkg/ as it is.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
case ":$PATH:" in *":$CARGO_BIN:"*) ;; *) export PATH="$CARGO_BIN:$PATH" ;; esac

bash scripts/setup.sh
if [ -n "${WHARF_SKIP_BUILD:-}" ]; then
  echo "demo: WHARF_SKIP_BUILD is set: using pkg/ as it is"
else
  node scripts/build.mjs
fi
node www/tools/build-demo.mjs
server_flags=$(node www/tools/build-demo.mjs --print-server-flags)
mapfile -t server_flags <<<"$server_flags"
cargo build -q -p wharf-server
echo "demo: the server's fault injection (${server_flags[*]}) starts paused"
exec target/debug/wharf-server --addr "127.0.0.1:${PORT:-8080}" --www www/dist --pkg pkg "${server_flags[@]}"
