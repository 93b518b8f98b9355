# Shared by scripts/demo and scripts/test: installs what is missing, idempotently and quickly
# when it is all there. Sourced, not run.
#
# Tool versions are pinned to ones seen to install on these machines:
#   cargo-leptos 0.3.11 (needs a nightly toolchain: its locked dependencies ask for rustc 1.96),
#   wasm-bindgen-cli at exactly the wasm-bindgen version in Cargo.lock.
# Unless cargo-leptos is already installed, the site is built by the same steps it takes (cargo
# for the server and for wasm32, wasm-bindgen, the CSS copied): see build_site_without_cargo_leptos.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CARGO_LEPTOS_VERSION="0.3.11"
# The cargo target directory may live outside the checkout so that repeated CI runs stay warm.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export PATH="$HOME/.cargo/bin:$PATH"
# Keep test output readable; colour codes break log scraping.
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

log() { printf '\n==> [%s] %s\n' "$(date +%T)" "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  log "installing Debian packages: $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null \
    || { as_root apt-get update -q >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; }
}

wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock"
}

ensure_wasm_target() {
  if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    log "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
}

ensure_wasm_bindgen() {
  local want have
  want="$(wasm_bindgen_version)"
  have="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
  if [ "$have" != "$want" ]; then
    log "installing wasm-bindgen-cli $want (found: ${have:-none})"
    # Not --locked: its lock file asks for versions this registry does not serve.
    cargo install wasm-bindgen-cli --version "$want" --force
  fi
}

has_nightly() {
  rustup toolchain list 2>/dev/null | grep -q '^nightly' \
    || rustup toolchain install nightly --profile minimal >/dev/null 2>&1
}

# Sets USE_CARGO_LEPTOS=1 when cargo-leptos is installed at the pinned version. It is not
# installed here: building it takes about 12 minutes on a fresh machine, and the debug build the
# two commands need is the same few steps done by hand (build_site_without_cargo_leptos).
# `cargo +nightly install cargo-leptos --version 0.3.11 --locked` for `cargo leptos watch`.
ensure_cargo_leptos() {
  USE_CARGO_LEPTOS=0
  if cargo leptos --version 2>/dev/null | grep -q "$CARGO_LEPTOS_VERSION"; then
    USE_CARGO_LEPTOS=1
  else
    log "building the site without cargo-leptos (the same steps; it is not installed)"
  fi
}

CARGO_FUZZ_VERSION="0.13.1"

# Sets USE_FUZZ=1 when cargo-fuzz (which needs nightly) is available.
ensure_cargo_fuzz() {
  USE_FUZZ=0
  if cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    USE_FUZZ=1
  elif has_nightly; then
    log "installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
    USE_FUZZ=1
  fi
}

IN_TOTO_VERSION="3.1.0"
SCHEMATHESIS_VERSION="4.32.5"

# The independent verifier of DSSE envelopes (the in-toto reference implementation's stack).
ensure_in_toto() {
  if ! python3 -c "import in_toto, securesystemslib, cryptography" 2>/dev/null; then
    log "installing in-toto $IN_TOTO_VERSION (PyPI) for the independent signature check"
    python3 -m pip install -q "in-toto==$IN_TOTO_VERSION"
  fi
}

# The API conformance tool.
ensure_schemathesis() {
  if ! command -v st >/dev/null 2>&1 || ! st --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    log "installing schemathesis $SCHEMATHESIS_VERSION (PyPI) for the API conformance run"
    python3 -m pip install -q "schemathesis==$SCHEMATHESIS_VERSION"
  fi
}

ensure_browser() {
  [ -x /usr/bin/chromium ] || apt_install chromium
}

ensure_promtool() {
  command -v promtool >/dev/null 2>&1 || apt_install prometheus
}

ensure_node_modules() {
  if [ ! -d "$ROOT/end2end/node_modules/playwright-core" ] || [ ! -d "$ROOT/end2end/node_modules/@axe-core/playwright" ] \
    || [ ! -d "$ROOT/end2end/node_modules/@microsoft/sarif-multitool" ] \
    || [ ! -d "$ROOT/end2end/node_modules/oidc-provider" ] || [ ! -d "$ROOT/end2end/node_modules/jose" ]; then
    log "installing the end2end npm packages"
    (cd "$ROOT/end2end" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

# What cargo-leptos does for a debug build, done by hand.
build_site_without_cargo_leptos() {
  local front="$CARGO_TARGET_DIR/front"
  cargo build -p stellar-server --bin stellar
  cargo build -p stellar-frontend --lib --target wasm32-unknown-unknown --target-dir "$front"
  rm -rf "$ROOT/target/site" && mkdir -p "$ROOT/target/site/pkg"
  wasm-bindgen --target web --no-typescript --out-name stellar --out-dir "$ROOT/target/site/pkg" \
    "$front/wasm32-unknown-unknown/debug/stellar_frontend.wasm"
  mv "$ROOT/target/site/pkg/stellar_bg.wasm" "$ROOT/target/site/pkg/stellar.wasm"
  cp "$ROOT/style/main.css" "$ROOT/target/site/pkg/stellar.css"
  cp -r "$ROOT/public/." "$ROOT/target/site/"
}

# Builds the server binary and the portal assets under target/site.
build_site() {
  ensure_wasm_target
  ensure_wasm_bindgen
  ensure_cargo_leptos
  log "building the server and the portal"
  if [ "$USE_CARGO_LEPTOS" = 1 ]; then
    cargo leptos build
  else
    build_site_without_cargo_leptos
  fi
}

stellar_bin() {
  echo "$CARGO_TARGET_DIR/debug/stellar"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_ready() {
  local url="$1" i
  for i in $(seq 1 120); do
    if curl -fsS "$url/readyz" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "the server at $url did not become ready" >&2
  return 1
}
