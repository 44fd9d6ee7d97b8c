#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
t0=$SECONDS
bash tools/build.sh
echo "build: $((SECONDS - t0)) s"
t1=$SECONDS
status=0
rm -f build/ctest.log
(cd build && ctest --output-on-failure -j2) 2>&1 | tee build/ctest.log || status=$?
echo "test suite: $((SECONDS - t1)) s"
exit $status
