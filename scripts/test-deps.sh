#!/usr/bin/env bash
# Install what the integration tests need, where it is missing, on a Debian
# (or Ubuntu) machine:
#
#   - PostgreSQL's server binaries (initdb, pg_ctl, postgres, psql), from the
#     distribution's `postgresql` package. The tests use the newest
#     /usr/lib/postgresql/<version>/bin, or $PG_BIN. When the tests run as
#     root they run PostgreSQL as the `postgres` OS user the package creates.
#   - postrust, the PostgREST-compatible server, pinned to the version the
#     tests are written against, from crates.io with `cargo install`.
#   - action-validator (npm package @action-validator/cli, pinned), which the
#     tests run on every file in .github/workflows/. It goes to
#     $HOME/.cache/aimharder-refresh-tools/node_modules/.bin/action-validator
#     (or set ACTION_VALIDATOR to one of your own). Needs node and npm; they
#     are installed from the distribution when missing.
#   - The checkers of the deploy/ files: systemd-analyze (the distribution's
#     `systemd` package), promtool (its `prometheus` package), and
#     kubernetes-validate (PyPI, pinned) in a virtualenv at
#     $HOME/.cache/aimharder-refresh-tools/venv (or set KUBERNETES_VALIDATE).
#
# Safe to run again: whatever is already there is left alone. Fails, loudly,
# if something cannot be installed.
set -euo pipefail

POSTRUST_VERSION=3.1.0
ACTION_VALIDATOR_VERSION=0.6.0
KUBERNETES_VALIDATE_VERSION=1.37.0

say() { printf 'test-deps: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

have_initdb() {
    if [ -n "${PG_BIN:-}" ]; then
        [ -x "$PG_BIN/initdb" ]
    else
        compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
    fi
}

# --- PostgreSQL --------------------------------------------------------------

if have_initdb; then
    say "PostgreSQL: found $(compgen -G "${PG_BIN:-/usr/lib/postgresql/*/bin}/initdb" | sort -V | tail -n 1)"
elif [ -n "${PG_BIN:-}" ]; then
    die "PG_BIN=$PG_BIN has no initdb in it; unset PG_BIN to install the distribution's PostgreSQL"
else
    command -v apt-get >/dev/null 2>&1 ||
        die "no apt-get: install PostgreSQL's server binaries yourself and point PG_BIN at their bin directory"
    say "PostgreSQL: installing the postgresql package"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
    have_initdb || die "installed postgresql, but there is still no /usr/lib/postgresql/*/bin/initdb"
fi

# Running as root, the tests hand the server to the `postgres` OS user with
# setpriv (initdb and postgres refuse to run as root).
if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 ||
        die "running as root needs the postgres OS user, which the postgresql package creates; it does not exist"
    command -v setpriv >/dev/null 2>&1 || as_root apt-get install -y util-linux
    command -v setpriv >/dev/null 2>&1 || die "setpriv (util-linux) is missing"
fi

# --- action-validator --------------------------------------------------------

# Before postrust: that section ends the script early when POSTRUST_BIN is set.
# The npm package is a node script around a WebAssembly build of the
# validator; it runs offline once installed.
if [ -n "${ACTION_VALIDATOR:-}" ]; then
    [ -x "$ACTION_VALIDATOR" ] || die "ACTION_VALIDATOR=$ACTION_VALIDATOR is not an executable"
    say "action-validator: using ACTION_VALIDATOR=$ACTION_VALIDATOR (not managed by this script)"
else
    tools="$HOME/.cache/aimharder-refresh-tools"
    av_bin="$tools/node_modules/.bin/action-validator"
    av_installed() {
        # The version npm installed, or nothing.
        sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' \
            "$tools/node_modules/@action-validator/$1/package.json" 2>/dev/null | head -n 1
    }
    if [ -x "$av_bin" ] && [ "$(av_installed cli)" = "$ACTION_VALIDATOR_VERSION" ] &&
        [ "$(av_installed core)" = "$ACTION_VALIDATOR_VERSION" ] && command -v node >/dev/null 2>&1; then
        say "action-validator: found $ACTION_VALIDATOR_VERSION at $av_bin"
    else
        if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
            command -v apt-get >/dev/null 2>&1 ||
                die "no node/npm and no apt-get: install Node.js with npm, or set ACTION_VALIDATOR"
            say "action-validator: installing node and npm from the distribution"
            as_root apt-get update
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm
        fi
        say "action-validator: installing @action-validator/cli $ACTION_VALIDATOR_VERSION into $tools (found: $(av_installed cli))"
        mkdir -p "$tools"
        # core is the cli's peer dependency: pinned too, so both move together.
        npm install --prefix "$tools" --save-exact --no-audit --no-fund --loglevel=error \
            "@action-validator/cli@$ACTION_VALIDATOR_VERSION" \
            "@action-validator/core@$ACTION_VALIDATOR_VERSION" >&2 ||
            die "npm install @action-validator/cli@$ACTION_VALIDATOR_VERSION failed (see above)"
        [ -x "$av_bin" ] && [ "$(av_installed cli)" = "$ACTION_VALIDATOR_VERSION" ] ||
            die "npm finished, but $av_bin is not action-validator $ACTION_VALIDATOR_VERSION"
    fi
fi

# --- systemd-analyze, promtool -----------------------------------------------

apt_tool() { # command package
    if command -v "$1" >/dev/null 2>&1; then
        say "$1: found $(command -v "$1")"
        return
    fi
    command -v apt-get >/dev/null 2>&1 || die "no $1 and no apt-get: install the $2 package yourself"
    say "$1: installing the $2 package"
    as_root apt-get update
    # The prometheus package would start a server where systemd runs; only
    # promtool is wanted, and a started server is harmless on its own port.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$2"
    command -v "$1" >/dev/null 2>&1 || die "installed $2, but there is still no $1"
}
apt_tool systemd-analyze systemd
apt_tool promtool prometheus

# --- kubernetes-validate -----------------------------------------------------

if [ -n "${KUBERNETES_VALIDATE:-}" ]; then
    [ -x "$KUBERNETES_VALIDATE" ] || die "KUBERNETES_VALIDATE=$KUBERNETES_VALIDATE is not an executable"
    say "kubernetes-validate: using KUBERNETES_VALIDATE=$KUBERNETES_VALIDATE (not managed by this script)"
else
    venv="$HOME/.cache/aimharder-refresh-tools/venv"
    kv_installed() { "$venv/bin/python" -m pip show kubernetes-validate 2>/dev/null | sed -n 's/^Version: //p'; }
    if [ -x "$venv/bin/kubernetes-validate" ] && [ "$(kv_installed)" = "$KUBERNETES_VALIDATE_VERSION" ]; then
        say "kubernetes-validate: found $KUBERNETES_VALIDATE_VERSION at $venv/bin/kubernetes-validate"
    else
        if ! python3 -m venv --help >/dev/null 2>&1; then
            command -v apt-get >/dev/null 2>&1 || die "no python3 with venv: install Python 3, or set KUBERNETES_VALIDATE"
            as_root apt-get update
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv
        fi
        say "kubernetes-validate: installing $KUBERNETES_VALIDATE_VERSION into $venv"
        python3 -m venv "$venv" || die "python3 -m venv $venv failed"
        "$venv/bin/python" -m pip install --quiet "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" ||
            die "pip install kubernetes-validate==$KUBERNETES_VALIDATE_VERSION failed (see above)"
        [ "$(kv_installed)" = "$KUBERNETES_VALIDATE_VERSION" ] ||
            die "pip finished, but $venv has no kubernetes-validate $KUBERNETES_VALIDATE_VERSION"
    fi
fi

# --- postrust ----------------------------------------------------------------

if [ -n "${POSTRUST_BIN:-}" ]; then
    # The tests use it as given, and refuse it at start-up if it does not
    # report version $POSTRUST_VERSION.
    [ -x "$POSTRUST_BIN" ] || die "POSTRUST_BIN=$POSTRUST_BIN is not an executable"
    say "postrust: using POSTRUST_BIN=$POSTRUST_BIN (not managed by this script)"
    exit 0
fi

command -v cargo >/dev/null 2>&1 || die "cargo is not on the PATH; install Rust (https://rustup.rs) first"

# `postrust --version` does not print a version: postrust takes no arguments
# and starts serving. Ask cargo what it installed instead.
installed=$(cargo install --list | sed -n 's/^postrust-server v\([^:]*\):$/\1/p')
bin="${CARGO_HOME:-$HOME/.cargo}/bin/postrust"

if [ "$installed" = "$POSTRUST_VERSION" ] && [ -x "$bin" ]; then
    say "postrust: found $POSTRUST_VERSION at $bin"
else
    say "postrust: installing postrust-server $POSTRUST_VERSION (found: ${installed:-none}); this compiles for a few minutes"
    # Without --locked: the release's lock file pins crates this registry
    # mirror may not serve; the resolved set is what the tests were run with.
    cargo install postrust-server --version "$POSTRUST_VERSION" ||
        die "cargo install postrust-server $POSTRUST_VERSION failed (see above)"
    installed=$(cargo install --list | sed -n 's/^postrust-server v\([^:]*\):$/\1/p')
    [ "$installed" = "$POSTRUST_VERSION" ] && [ -x "$bin" ] ||
        die "cargo install finished, but $bin is not postrust-server $POSTRUST_VERSION (cargo lists: ${installed:-none})"
fi
