package auth_test

import (
	"testing"

	"github.com/zitadel/oidc/v3/pkg/op"

	"labelstation/devcloud/auth"
)

// devcloud's endpoint paths must not leak into other OpenID providers in the same process (a test
// running devcloud's broker next to a third-party provider, say).
func TestNewLeavesLibraryDefaultsAlone(t *testing.T) {
	before := op.DefaultEndpoints.DeviceAuthorization.Relative()
	if _, err := auth.New(auth.Options{Issuer: "http://127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	if got := op.DefaultEndpoints.DeviceAuthorization.Relative(); got != before {
		t.Fatalf("library default device endpoint changed from %q to %q", before, got)
	}
}
