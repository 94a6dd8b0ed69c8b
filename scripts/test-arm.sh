#!/usr/bin/env bash
# Unit tests of the station's packages for the Raspberry Pi's CPUs, run under qemu-user:
#   arm64  Pi 3/4/5, Zero 2 W (64-bit OS)
#   armv6  Pi Zero/1 (GOARM=6, emulated as an ARM1176 so an ARMv7 instruction would fault)
# Usage: scripts/test-arm.sh [arm64] [armv6]   (default: both)
#
# No binfmt_misc is needed: `go test -exec` starts each test binary through qemu, and the same
# wrapper is named in LABELSTATION_TEST_EXEC for tests that re-launch their own binary
# (internal/selfexec).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}

# Not run under emulation, with the reason:
#   devcloud, cmd/devcloud   the cloud side: runs on servers, never on a station
#   display/cmd/screenshots  a documentation generator
#   packaging                builds and installs the .deb with the host's go, nfpm and dpkg
#   internal/chaos, cmd/chaos, cmd/bench-e2e, cmd/simprinter, internal/fleettest
#                            harnesses that run devcloud and whole station processes; the code
#                            they drive is covered by its own packages above
EXCLUDE='^labelstation/(devcloud|cmd/devcloud|display/cmd/screenshots|packaging|internal/chaos|cmd/chaos|cmd/bench-e2e|cmd/simprinter|internal/fleettest)(/|$)'
# Tests skipped under emulation: they build a binary with the go tool and execute it directly,
# which an ARM binary cannot be without binfmt_misc. The stationd end-to-end tests (devcloud
# in the same process) do run: the daemon is what a Pi Zero runs.
#   TestSystemdNotifyReadyWatchdogStop            builds stationd (natively in `make test`)
#   TestEnrollWithThirdPartyOpenIDProvider,
#   TestUnmodifiedExampleServerIsASetupProblem    build the zitadel example OpenID provider
SKIP='^(TestSystemdNotifyReadyWatchdogStop|TestEnrollWithThirdPartyOpenIDProvider|TestUnmodifiedExampleServerIsASetupProblem)$'

need_qemu() {
  if command -v qemu-aarch64-static >/dev/null && command -v qemu-arm-static >/dev/null; then
    return
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test-arm: installing qemu-user-static"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static
  else
    echo "test-arm: qemu-user-static is missing; install it (sudo apt-get install qemu-user-static) and re-run" >&2
    exit 1
  fi
}

need_qemu
pkgs=$($GO list ./... | grep -Ev "$EXCLUDE")
arches=("$@")
[ ${#arches[@]} -gt 0 ] || arches=(arm64 armv6)
for arch in "${arches[@]}"; do
  case $arch in
    arm64) env=(GOARCH=arm64); qemu="qemu-aarch64-static" ;;
    armv6) env=(GOARCH=arm GOARM=6); qemu="qemu-arm-static -cpu arm1176" ;;
    *) echo "test-arm: unknown arch $arch (want arm64 or armv6)" >&2; exit 2 ;;
  esac
  echo "test-arm: $arch under $qemu"
  start=$SECONDS
  env "${env[@]}" CGO_ENABLED=0 $GO test -count=1 -timeout 15m -skip "$SKIP" \
    -exec "env 'LABELSTATION_TEST_EXEC=$qemu' $qemu" $pkgs
  echo "test-arm: $arch passed in $((SECONDS - start)) s"
done
