#!/bin/sh
# The static checks of `make check` (STYLE §10), each over the C sources:
#   format     clang-format (.clang-format) on the lines changed since CHECK_BASE
#              (default: where this branch left main), or on every file with
#              CHECK_FORMAT=all
#   clang-tidy the checks of .clang-tidy, with the compile commands of BUILD
#   cppcheck   warnings and portability; scripts/cppcheck.supp lists, with
#              reasons, the findings that are not bugs
# Usage: scripts/check.sh [BUILD]   (BUILD: a configured build dir, default build-asan)
# Exits 1 when any check finds something, after running them all.
set -u
cd "$(dirname "$0")/.."
build=${1:-build-asan}
failed=""

# --- format ---
if [ "${CHECK_FORMAT:-changed}" = "all" ]; then
    out=$(git ls-files '*.c' '*.h' | xargs clang-format --dry-run 2>&1)
else
    base=${CHECK_BASE:-$(git merge-base HEAD main 2>/dev/null || git rev-parse HEAD)}
    out=$(git diff -U0 --no-color "$base" -- '*.c' '*.h' | clang-format-diff -p1)
fi
if [ -n "$out" ]; then
    printf '%s\n' "$out"
    echo "check: format: the lines above differ from .clang-format (clang-format -i FILE)"
    failed="$failed format"
else
    echo "check: format ok"
fi

# --- clang-tidy ---
if [ ! -f "$build/compile_commands.json" ]; then
    echo "check: clang-tidy: no $build/compile_commands.json (meson setup $build first)"
    failed="$failed clang-tidy"
elif ! run-clang-tidy -p "$build" -quiet -j "$(nproc)" "$PWD/src/" >"$build/clang-tidy.log" 2>&1
then
    sed "s/\x1b\[[0-9;]*m//g" "$build/clang-tidy.log" | grep -E "(warning|error):" | sort -u
    echo "check: clang-tidy: findings above (whole log: $build/clang-tidy.log)"
    failed="$failed clang-tidy"
else
    echo "check: clang-tidy ok"
fi

# --- cppcheck ---
if ! cppcheck --quiet --error-exitcode=1 --enable=warning,portability --std=c11 --inline-suppr \
        --suppressions-list=scripts/cppcheck.supp -D__GNUC__ -I src -I include src include; then
    echo "check: cppcheck: findings above"
    failed="$failed cppcheck"
else
    echo "check: cppcheck ok"
fi

if [ -n "$failed" ]; then
    echo "check: failed:$failed"
    exit 1
fi
exit 0
