#!/bin/sh
# Installs, by package name, everything fluxhook needs to build, run and test
# on Debian 12. Quiet and quick when all is there already.
set -eu

debs="build-essential pkg-config meson ninja-build clang libclang-rt-14-dev
libcurl4-openssl-dev libssl-dev libsqlite3-dev libpq-dev
libjansson-dev libcmocka-dev openssl python3 curl"

# Test-only packages: a real PostgreSQL server, a real browser, Node for the
# browser driver, the toolchains that build and run the receiver examples
# (examples/receivers/: Go, Ruby, PHP, Java, C# with Mono), and an OAuth 2.0
# client written elsewhere (Debian's oauthlib, run with /usr/bin/python3 by
# tests/e2e/test_oauth_client.py).
if [ "${1:-}" = "--test" ]; then
    debs="$debs postgresql chromium nodejs iproute2"
    debs="$debs golang-go ruby php-cli default-jdk-headless mono-mcs"
    debs="$debs python3-oauthlib python3-requests-oauthlib"
    # Debian's npm only when there is no npm yet: a Node.js built elsewhere
    # (NodeSource's nodejs) brings its own, and Debian's npm conflicts with it.
    command -v npm >/dev/null 2>&1 || debs="$debs npm"
fi

# `make check`: the format check, clang-tidy and cppcheck (scripts/check.sh),
# and PostgreSQL for the store tests of both backends.
if [ "${1:-}" = "--check" ]; then
    debs="$debs clang-format clang-tidy cppcheck postgresql"
fi

# The benchmarks: nginx and wrk are the same-run reference of make bench
# (bench/run.py); bench/pg_scale.py compares SQLite with a real PostgreSQL server.
if [ "${1:-}" = "--bench" ]; then
    debs="$debs nginx-light wrk postgresql"
fi

missing=""
for p in $debs; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -n "$missing" ]; then
    echo "setup: installing$missing"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    # shellcheck disable=SC2086
    $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ "${1:-}" = "--test" ] && { [ ! -d tests/browser/node_modules/playwright-core ] ||
                                [ ! -d tests/browser/node_modules/axe-core ]; }; then
    echo "setup: installing playwright-core and axe-core from npm"
    (cd tests/browser && npm install --no-audit --no-fund --silent >/dev/null)
fi
exit 0
