#!/usr/bin/env bash
# Builds dist/stationd_VERSION_ARCH.deb for each Debian architecture from the make dist binaries:
#   arm64 (Pi 3/4/5, Zero 2 W on a 64-bit OS), armhf (every 32-bit Raspberry Pi OS: the ARMv6
#   build runs on the Zero as on the Pi 4), amd64 (x86 boxes and the install test).
# ISSUER and BROKER go into the default /etc/stationd/stationd.json, so a fleet's own package
# installs ready to enroll.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
GO=${GO:-go}
DIST=${DIST:-dist}
case $DIST in /*) ;; *) DIST=$root/$DIST ;; esac
VERSION=${VERSION:?VERSION is required (make deb sets it)}
ISSUER=${ISSUER:-http://devcloud.local:8780}
BROKER=${BROKER:-mqtt://devcloud.local:18830}
# Debian versions start with a digit; a git describe like v1.2.3-4-gabc becomes 1.2.3-4-gabc.
debversion=${VERSION#v}
[[ $debversion =~ ^[0-9] ]] || debversion="0.0~$debversion"
# nfpm is a tool of this module (go.mod `tool`); -n builds it and names the binary, so it runs
# from the staging directory, which may be outside the module.
nfpm=$($GO tool -n nfpm)
arches=("$@")
[ ${#arches[@]} -gt 0 ] || arches=(arm64 armhf amd64)
for deb in "${arches[@]}"; do
  case $deb in
    arm64) bin=linux-arm64 ;;
    armhf) bin=linux-armv6 ;;
    amd64) bin=linux-amd64 ;;
    *) echo "deb: unknown architecture $deb (want arm64, armhf, amd64)" >&2; exit 2 ;;
  esac
  stage="$DIST/stage/$deb"
  rm -rf "$stage" && mkdir -p "$stage"
  cp "$DIST/$bin/stationd" "$DIST/$bin/stationctl" packaging/stationd.service packaging/60-stationd.rules \
     packaging/scripts/postinst packaging/scripts/prerm packaging/scripts/postrm README.md "$stage/"
  sed -e "s|@ISSUER@|$ISSUER|" -e "s|@BROKER@|$BROKER|" packaging/stationd.json.in > "$stage/stationd.json"
  out="$DIST/stationd_${debversion}_${deb}.deb"
  (cd "$stage" && DEB_ARCH=$deb VERSION=$debversion "$nfpm" pkg --config "$root/packaging/nfpm.yaml" --packager deb --target "$out")
done
