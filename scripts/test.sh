#!/usr/bin/env bash
# Sets up and runs the whole test suite. In CI (CI=true) warnings are errors (see Package.swift).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build --build-tests
# Serially: several tests run robotd and its simulator as real-time processes; side by side on
# a 2-core machine they would starve one another (a test of robotd, not of the machine).
swift test --skip-build --no-parallel
