#!/usr/bin/env bash
# The one command that runs every Wharf test; CI runs it through .ci/run. Steps, in order, failing
# fast: setup (installs what is missing), rustfmt check, native tests, package build (with the size
# budget), browser tests (wasm-bindgen-test in window / dedicated worker / service worker scopes,
# headless Chromium via chromedriver), TypeScript type test of pkg/, end-to-end tests (Playwright).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
started=$SECONDS
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
case ":$PATH:" in *":$CARGO_BIN:"*) ;; *) export PATH="$CARGO_BIN:$PATH" ;; esac

current="(start)"
done_steps=()
step() {
  current="$1"
  printf '\n======== [test %s] %s  (%ds) ========\n' "$1" "$2" "$((SECONDS - started))"
}
passed() { done_steps+=("$current"); }
trap 'status=$?; if [ $status -ne 0 ]; then echo; echo "test.sh: FAILED at step \"$current\" (exit $status) after $((SECONDS - started))s"; fi' EXIT

step setup "scripts/setup.sh"
bash scripts/setup.sh
passed

step fmt "cargo fmt --all -- --check"
cargo fmt --all -- --check
passed

step clippy "cargo clippy (host and wasm32), warnings are errors"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --target wasm32-unknown-unknown --features fault-injection --lib \
  --test browser_window --test browser_worker --test browser_service_worker -- -D warnings
passed

step native "cargo test --workspace (host)"
cargo test --workspace
passed

step build "node scripts/build.mjs"
node scripts/build.mjs
passed

step browser "wasm-bindgen-test in headless Chromium (window, dedicated worker, service worker)"
# Never pass -q here: wasm-bindgen-test-runner rejects --quiet.
export CHROMEDRIVER=/usr/bin/chromedriver
export WASM_BINDGEN_TEST_TIMEOUT=120
cargo test --target wasm32-unknown-unknown --features fault-injection \
  --test browser_window --test browser_worker --test browser_service_worker
passed

step types "npx tsc -p tests/types"
npx --no-install tsc -p tests/types
passed

step e2e "node --test tests/e2e/"
node --test tests/e2e/
passed

echo
echo "test.sh: all ${#done_steps[@]} steps passed (${done_steps[*]}) in $((SECONDS - started))s"
