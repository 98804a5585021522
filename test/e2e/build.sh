#!/usr/bin/env bash
# Builds both binaries and the e2e test binary into .cache/e2e for the VM.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .cache/e2e
go build -o .cache/e2e/ ./cmd/director ./cmd/realserver
go test -c -tags e2e -o .cache/e2e/e2e.test ./test/e2e
