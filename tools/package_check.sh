#!/usr/bin/env bash
# Installs the build in build/ under a temporary prefix, then builds examples/package (a project
# outside the tree) against it twice, through the CMake package and through pkg-config, and runs
# its programs: TSN and GPT training, a custom model under a memory plan (docs/api.md).
# Usage: bash tools/package_check.sh [BUILD_DIR]   (default build; run tools/build.sh first)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
t0=$SECONDS
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
echo "installed: $(find "$work/prefix/include/spool" -name '*.h' | wc -l) headers, $(du -sh "$work/prefix/lib" | cut -f1) of libraries"
cmake -S examples/package -B "$work/cmake" -DCMAKE_PREFIX_PATH="$work/prefix" > "$work/configure.log"
cmake --build "$work/cmake" -j2
# pkg-config: the same programs from one compiler line each.
export PKG_CONFIG_PATH="$(dirname "$(find "$work/prefix" -name spool.pc)")"
mkdir -p "$work/pc"
for program in tsn gpt planned; do
  # shellcheck disable=SC2046
  c++ -O2 -Werror -o "$work/pc/$program" "examples/package/$program.cpp" $(pkg-config --cflags --libs spool)
done
echo "package build: $((SECONDS - t0)) s"
for program in tsn gpt planned; do
  echo "---- $program (CMake package)"
  "$work/cmake/$program"
  echo "---- $program (pkg-config)"
  "$work/pc/$program" > "$work/pc/$program.log" || { cat "$work/pc/$program.log"; exit 1; }
  tail -1 "$work/pc/$program.log"
done
echo "package check: $((SECONDS - t0)) s"
