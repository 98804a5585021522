#!/usr/bin/env bash
# The end-to-end suite: builds the binaries and the test binary here, runs
# the no-IPVS test on this machine (in a namespace of its own), then every
# other test in the VM of test/vm, on a kernel with IPVS.
set -euo pipefail
cd "$(dirname "$0")/../.."
test/e2e/build.sh
out=$PWD/.cache/e2e

echo "== on this machine (no IPVS)"
LVSDR_E2E_BIN=$out "$out/e2e.test" -test.run 'NoIPVS' -test.v

echo "== in the VM (Debian's kernel, IPVS)"
LVSDR_E2E_BIN=$out test/vm/run --timeout 2100 -- "$out/e2e.test" -test.v -test.timeout 34m ${LVSDR_E2E_ARGS:-}
