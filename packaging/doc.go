// Package packaging holds the Debian package of the station (nfpm recipe, systemd unit, udev
// rules, maintainer scripts, default config). It has no code; its test builds the package for
// this machine's architecture, lists it and installs it into a scratch root.
package packaging
