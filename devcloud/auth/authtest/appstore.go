// Package authtest holds the conformance suite every auth.AppStore passes.
package authtest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"labelstation/devcloud/auth"
)

// AppStore checks the guarantees auth relies on: applications and grants read back as written,
// a rotation happens once (a second presentation of the same token revokes the family), and
// revocation reaches every token of a family. reopen, when not nil, closes the store and opens
// it again on the same storage: what was written must survive.
func AppStore(t *testing.T, s auth.AppStore, reopen func() auth.AppStore) {
	t.Helper()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	app := auth.RegisteredApp{ClientID: "app-1", SecretHash: "abc", Name: "Shop", Description: "Web shop",
		IconURL: "https://shop.example/icon.png", RedirectURIs: []string{"https://shop.example/cb"}, Created: at}
	if _, err := s.GetApp("app-1"); !errors.Is(err, auth.ErrUnknownApp) {
		t.Fatalf("GetApp of an unknown app: %v, want ErrUnknownApp", err)
	}
	if err := s.PutApp(app); err != nil {
		t.Fatal(err)
	}
	if err := s.PutApp(auth.RegisteredApp{ClientID: "app-0", Name: "Other", RedirectURIs: []string{"http://127.0.0.1/cb"}, Created: at}); err != nil {
		t.Fatal(err)
	}
	g1 := auth.Grant{TokenHash: "h1", Family: "f1", ClientID: "app-1", UserID: "alice", Scopes: []string{"printing", "offline_access"}, AuthTime: at, Expires: at.Add(time.Hour)}
	other := auth.Grant{TokenHash: "o1", Family: "f2", ClientID: "app-1", UserID: "bob", Scopes: []string{"printing"}, AuthTime: at, Expires: at.Add(time.Hour)}
	for _, g := range []auth.Grant{g1, other} {
		if err := s.AddGrant(g); err != nil {
			t.Fatal(err)
		}
	}
	if reopen != nil {
		s = reopen()
	}
	got, err := s.GetApp("app-1")
	if err != nil || got.Name != app.Name || got.SecretHash != app.SecretHash || !slices.Equal(got.RedirectURIs, app.RedirectURIs) || !got.Created.Equal(at) {
		t.Fatalf("GetApp = %+v, %v; want %+v", got, err, app)
	}
	list, err := s.ListApps()
	if err != nil || len(list) != 2 {
		t.Fatalf("ListApps = %v, %v; want 2 apps", list, err)
	}
	if err := s.DeleteApp("app-0"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteApp("app-0"); !errors.Is(err, auth.ErrUnknownApp) {
		t.Fatalf("deleting a deleted app: %v, want ErrUnknownApp", err)
	}
	if list, _ := s.ListApps(); len(list) != 1 || list[0].ClientID != "app-1" {
		t.Fatalf("ListApps after delete = %v", list)
	}
	if _, err := s.GetGrant("nope"); !errors.Is(err, auth.ErrUnknownGrant) {
		t.Fatalf("GetGrant of an unknown hash: %v, want ErrUnknownGrant", err)
	}
	g, err := s.GetGrant("h1")
	if err != nil || g.UserID != "alice" || g.Family != "f1" || !slices.Equal(g.Scopes, g1.Scopes) || !g.Expires.Equal(g1.Expires) || g.Used || g.Revoked {
		t.Fatalf("GetGrant = %+v, %v", g, err)
	}

	// Rotation: h1 -> h2.
	g2 := g1
	g2.TokenHash = "h2"
	if err := s.RotateGrant("h1", g2); err != nil {
		t.Fatal(err)
	}
	if g, _ := s.GetGrant("h1"); !g.Used {
		t.Fatalf("rotated grant not marked used: %+v", g)
	}
	live, err := s.ListGrants("alice")
	if err != nil || len(live) != 1 || live[0].TokenHash != "h2" {
		t.Fatalf("ListGrants(alice) = %+v, %v; want only h2", live, err)
	}
	if all, _ := s.ListGrants(""); len(all) != 2 {
		t.Fatalf("ListGrants(\"\") = %+v; want h2 and o1", all)
	}
	// Presenting h1 again is reuse: the family dies, the other user's grant lives.
	g3 := g1
	g3.TokenHash = "h3"
	if err := s.RotateGrant("h1", g3); !errors.Is(err, auth.ErrGrantReused) {
		t.Fatalf("second rotation of h1: %v, want ErrGrantReused", err)
	}
	if g, _ := s.GetGrant("h2"); !g.Revoked {
		t.Fatalf("after reuse h2 = %+v, want revoked", g)
	}
	if _, err := s.GetGrant("h3"); !errors.Is(err, auth.ErrUnknownGrant) {
		t.Fatalf("a refused rotation stored its new token: %v", err)
	}
	if err := s.RotateGrant("h2", g3); !errors.Is(err, auth.ErrGrantRevoked) {
		t.Fatalf("rotating a revoked token: %v, want ErrGrantRevoked", err)
	}
	if err := s.RotateGrant("nope", g3); !errors.Is(err, auth.ErrUnknownGrant) {
		t.Fatalf("rotating an unknown token: %v, want ErrUnknownGrant", err)
	}
	// Revoking a family counts its live tokens.
	if n, err := s.RevokeGrantFamily("f2"); err != nil || n != 1 {
		t.Fatalf("RevokeGrantFamily(f2) = %d, %v; want 1", n, err)
	}
	if n, err := s.RevokeGrantFamily("f2"); err != nil || n != 0 {
		t.Fatalf("RevokeGrantFamily(f2) again = %d, %v; want 0", n, err)
	}
	if live, _ := s.ListGrants(""); len(live) != 0 {
		t.Fatalf("ListGrants after revoking all = %+v", live)
	}
	if reopen != nil {
		s = reopen()
		if g, err := s.GetGrant("o1"); err != nil || !g.Revoked {
			t.Fatalf("after reopening o1 = %+v, %v; want revoked", g, err)
		}
	}
	// Purging drops what expired before the time given, whatever its state, and nothing else.
	young := auth.Grant{TokenHash: "y1", Family: "f3", ClientID: "app-1", UserID: "alice", AuthTime: at, Expires: at.Add(2 * time.Hour)}
	if err := s.AddGrant(young); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PurgeGrants(at.Add(time.Hour + time.Second)); err != nil || n != 3 {
		t.Fatalf("PurgeGrants = %d, %v; want h1, h2 and o1, expired after an hour", n, err)
	}
	if _, err := s.GetGrant("h1"); !errors.Is(err, auth.ErrUnknownGrant) {
		t.Fatalf("an expired token survived the purge: %v", err)
	}
	if g, err := s.GetGrant("y1"); err != nil || g.Family != "f3" {
		t.Fatalf("a live token was purged: %+v, %v", g, err)
	}
}
