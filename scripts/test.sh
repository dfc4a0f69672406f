#!/usr/bin/env bash
# The one command that runs every Wharf test; CI runs it through .ci/run. Steps, in order, failing
# fast: setup (installs what is missing), rustfmt check, native tests, package build (with the size
# budget), browser tests (wasm-bindgen-test in window / dedicated worker / service worker scopes,
# in headless Chromium via chromedriver and in headless Firefox ESR via geckodriver), TypeScript
# type test of pkg/, end-to-end tests (Chromium via Playwright against the reference server,
# Firefox via WebDriver).
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

step build "node scripts/build.mjs, and the reference server the end-to-end tests run"
node scripts/build.mjs
cargo build -p wharf-server
passed

# Never pass -q to these: wasm-bindgen-test-runner rejects --quiet.
export WASM_BINDGEN_TEST_TIMEOUT=120
browser_suites=(--test browser_window --test browser_worker --test browser_service_worker)

step chromium "wasm-bindgen-test in headless Chromium (window, dedicated worker, service worker)"
env -u GECKODRIVER CHROMEDRIVER=/usr/bin/chromedriver cargo test --target wasm32-unknown-unknown --features fault-injection "${browser_suites[@]}"
passed

step firefox "wasm-bindgen-test in headless Firefox ESR (window, dedicated worker, service worker)"
env -u CHROMEDRIVER GECKODRIVER="$CARGO_BIN/geckodriver" cargo test --target wasm32-unknown-unknown --features fault-injection "${browser_suites[@]}"
passed

step types "npx tsc -p tests/types"
npx --no-install tsc -p tests/types
passed

step e2e "node --test tests/e2e/ (Chromium via Playwright, Firefox via WebDriver)"
export GECKODRIVER="$CARGO_BIN/geckodriver"
node --test tests/e2e/
passed

echo
echo "test.sh: all ${#done_steps[@]} steps passed (${done_steps[*]}) in $((SECONDS - started))s"
