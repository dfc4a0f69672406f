#!/usr/bin/env bash
# Installs everything Wharf's build, tests and demo need on a fresh Debian 12 machine that has
# rustup/cargo, node 20, npm and python3 (see shared TOOLCHAIN.md): the wasm32 target, rustfmt and
# clippy, wasm-bindgen-cli of exactly Cargo.lock's wasm-bindgen version, Debian's chromium and
# chromium-driver, Debian's postgresql (the server's tests), Debian's firefox-esr, geckodriver,
# webkit2gtk-driver and xvfb (WebKit), and the npm devDependencies
# (binaryen's wasm-opt, playwright-core, typescript, smol-toml). Every step is skipped when already
# done, so a warm run takes a few seconds.
# Never installs Debian's binaryen, never runs `npx playwright install` (no browser downloads here).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
started=$SECONDS

# cargo-installed tools live here; a non-login shell (CI) may not have it on PATH yet.
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
case ":$PATH:" in *":$CARGO_BIN:"*) ;; *) export PATH="$CARGO_BIN:$PATH" ;; esac

ok() { echo "ok: $*"; }
installing() { echo "installing: $*"; }
die() { echo "setup: ERROR: $*" >&2; exit 1; }

for tool in rustup cargo node npm; do
  command -v "$tool" >/dev/null || die "$tool is not installed (this machine kind should ship it)"
done
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "node >= 20 is required, found $(node --version)"

# 1. Rust target for the browser build.
installed_targets=$(rustup target list --installed) # captured: grep -q in a pipe + pipefail = SIGPIPE
if grep -qx 'wasm32-unknown-unknown' <<<"$installed_targets"; then
  ok "wasm target present"
else
  installing "rustup target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# 2. rustfmt and clippy (cargo fmt --check runs in scripts/test.sh).
installed_components=$(rustup component list --installed)
missing_components=()
for component in rustfmt clippy; do
  grep -q "^$component" <<<"$installed_components" || missing_components+=("$component")
done
if [ ${#missing_components[@]} -eq 0 ]; then
  ok "rustfmt and clippy present"
else
  installing "rustup components ${missing_components[*]}"
  rustup component add "${missing_components[@]}"
fi

# 3. wasm-bindgen CLI (with wasm-bindgen-test-runner) of exactly the version in Cargo.lock.
#    No --locked: the reachable index lags the CLI's lock file (see TOOLCHAIN.md).
#    Built with tiny_http 0.12.0 patched (scripts/tiny_http-task-pool.patch): the runner serves the
#    test page with it, and its thread pool can queue a new connection with no thread left to serve
#    it when a browser opens four or more at once (each keep-alive connection holds a thread), so a
#    module request of the page or worker was never answered and about one Chromium suite run in
#    three stalled ("Failed to detect test as having been run", or no return at all). The stamp
#    file records that the installed CLI is the patched build of this version.
wb_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
[ -n "$wb_version" ] || die "no wasm-bindgen package in Cargo.lock"
cli_version() { command -v "$1" >/dev/null && "$1" --version 2>/dev/null | awk 'NR == 1 { print $2 }' || true; }
runner_stamp="$CARGO_BIN/.wasm-bindgen-cli.wharf"
runner_want="$wb_version tiny_http $(sha256sum scripts/tiny_http-task-pool.patch | cut -c1-16)"
if [ "$(cli_version wasm-bindgen)" = "$wb_version" ] && [ "$(cli_version wasm-bindgen-test-runner)" = "$wb_version" ] &&
  [ "$(cat "$runner_stamp" 2>/dev/null)" = "$runner_want" ]; then
  ok "wasm-bindgen-cli $wb_version present (tiny_http patched)"
else
  installing "wasm-bindgen-cli $wb_version with tiny_http patched (cargo install, ~2.5 min; found '$(cli_version wasm-bindgen)')"
  tiny=$(mktemp -d)
  mkdir "$tiny/src" && touch "$tiny/src/lib.rs"
  printf '[package]\nname = "tiny-http-source"\nversion = "0.0.0"\nedition = "2021"\n\n[dependencies]\ntiny_http = "=0.12.0"\n\n[workspace]\n' >"$tiny/Cargo.toml"
  cargo vendor -q --manifest-path "$tiny/Cargo.toml" "$tiny/vendor" >/dev/null
  (cd "$tiny/vendor/tiny_http" && git apply -p1 "$OLDPWD/scripts/tiny_http-task-pool.patch")
  grep -q 'waiting_tasks.load(Ordering::Acquire) <= queue.len()' "$tiny/vendor/tiny_http/src/util/task_pool.rs" ||
    die "the tiny_http patch did not apply"
  install_log="$tiny/install.log"
  cargo install wasm-bindgen-cli --version "$wb_version" --force \
    --config "patch.crates-io.tiny_http.path=\"$tiny/vendor/tiny_http\"" 2>&1 | tee "$install_log"
  grep -q "Compiling tiny_http v0.12.0 ($tiny/vendor/tiny_http)" "$install_log" ||
    die "wasm-bindgen-cli was not built with the patched tiny_http (see $install_log)"
  [ "$(cli_version wasm-bindgen)" = "$wb_version" ] ||
    die "wasm-bindgen on PATH is '$(cli_version wasm-bindgen)' after installing $wb_version ($(command -v wasm-bindgen))"
  echo "$runner_want" >"$runner_stamp"
  rm -rf "$tiny"
fi

# Debian packages: `apt-get update` runs once, and only when something is missing.
apt_updated=""
apt_install() {
  installing "$* (apt-get)"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  [ -n "$apt_updated" ] || { $sudo apt-get update -q; apt_updated=1; }
  $sudo apt-get install -y -q --no-install-recommends "$@"
}

# 4. Chromium and chromedriver from Debian (browser tests and Playwright use /usr/bin/chromium).
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  ok "chromium and chromedriver present"
else
  apt_install chromium chromium-driver
fi

# 4b. PostgreSQL from Debian: the reference server's tests run every protocol test against it too.
#     Nothing is started here: server/tests/common/pg.rs runs a throwaway cluster (initdb in a temp
#     directory, a free loopback port, as the postgres user) for each test process and stops it.
if compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null && id postgres >/dev/null 2>&1; then
  ok "postgresql present"
else
  apt_install postgresql
fi

# 5. Firefox ESR (Debian) and geckodriver (crates.io): the second engine for every browser suite.
#    npm's geckodriver downloads a binary at install time, which cannot work here.
if [ -x /usr/bin/firefox-esr ]; then
  ok "firefox-esr present"
else
  apt_install firefox-esr
fi
geckodriver_version=0.37.1
if [ "$(cli_version geckodriver)" = "$geckodriver_version" ]; then
  ok "geckodriver $geckodriver_version present"
else
  installing "geckodriver $geckodriver_version (cargo install, ~2 min)"
  cargo install geckodriver --version "$geckodriver_version" --force
fi

# 5b. WebKitGTK (Debian): the third engine. webkit2gtk-driver gives /usr/bin/WebKitWebDriver and
#     pulls in WebKitGTK's MiniBrowser (libwebkit2gtk-4.1-0). MiniBrowser has no headless mode:
#     scripts/test.sh and tests/e2e/drivers/webdriver.mjs start an Xvfb display for it.
if [ -x /usr/bin/WebKitWebDriver ] && [ -x /usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser ] &&
  command -v Xvfb >/dev/null; then
  ok "webkit2gtk-driver (WebKitWebDriver, MiniBrowser) and xvfb present"
else
  apt_install webkit2gtk-driver xvfb
fi

# 6. npm devDependencies, exactly as package-lock.json says.
stamp=node_modules/.wharf-stamp
if [ -d node_modules ] && [ -f "$stamp" ] && ! [ package-lock.json -nt "$stamp" ]; then
  ok "node_modules up to date with package-lock.json"
else
  installing "npm devDependencies (npm ci)"
  npm ci --no-audit --no-fund
  touch "$stamp"
fi

echo "setup: done in $((SECONDS - started))s"
