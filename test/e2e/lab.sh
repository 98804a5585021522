#!/usr/bin/env bash
# make lab: the whole system at work on a real kernel, in one command.
set -euo pipefail
cd "$(dirname "$0")/../.."
test/e2e/build.sh
out=$PWD/.cache/e2e
echo "booting a VM with Debian's kernel (IPVS); about 20 s under emulation"
LVSDR_LAB=1 LVSDR_E2E_BIN=$out test/vm/run --timeout 1200 -- "$out/e2e.test" -test.run '^TestLab(HA)?$' -test.v -test.timeout 15m
