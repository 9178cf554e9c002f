# Sourced by run.sh, test.sh and .ci/run: installs the system packages the
# build and the tests need (Debian/Ubuntu), and points cargo at a shared,
# cached build directory so RocksDB's C++ is compiled once per machine.

fenghuo_install_packages() {
    local missing=()
    for p in "$@"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "Installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y "${missing[@]}" >/dev/null || {
        $sudo apt-get update >/dev/null && $sudo apt-get install -y "${missing[@]}" >/dev/null
    }
}

# Build caching: sccache caches compiled objects (C++ included) and the
# target directory lives outside the clone, so fresh clones reuse it.
if command -v sccache >/dev/null 2>&1; then
    export RUSTC_WRAPPER="${RUSTC_WRAPPER:-sccache}"
    export SCCACHE_DIR="${SCCACHE_DIR:-$HOME/.cache/sccache}"
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/fenghuo-target}"
