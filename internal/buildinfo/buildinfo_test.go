package buildinfo

import (
	"strings"
	"testing"
)

func TestStringNamesEveryPart(t *testing.T) {
	in := Info{Version: "1.2.3", Commit: "0123456789abcdef0123", Date: "2026-11-30T12:00:00Z", Go: "go1.26", Arch: "linux/armv6"}
	got := in.String()
	want := "1.2.3 (commit 0123456789ab, built 2026-11-30T12:00:00Z, go1.26 linux/armv6)"
	if got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
	if s := (Info{Version: "dev", Go: "go1.26", Arch: "linux/amd64"}).String(); !strings.Contains(s, "commit unknown, built unknown") {
		t.Fatalf("unstamped String = %q", s)
	}
}
