package devcloud

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"labelstation/devcloud/jobs"
	"labelstation/internal/pgtest"
	"labelstation/protocol"
)

func openStore(t *testing.T, spec string) jobs.Store {
	t.Helper()
	s, err := jobs.Open(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A badge linked by phone still works after devcloud restarts on its store, and a code issued
// before the restart is confirmed after it.
func TestBadgeLinkSurvivesRestart(t *testing.T) {
	for _, kind := range []struct {
		name string
		spec func(t *testing.T) string
	}{
		{"bolt", func(t *testing.T) string { return "bolt:" + filepath.Join(t.TempDir(), "devcloud.db") }},
		{"postgres", func(t *testing.T) string { return pgtest.Database(t) }},
	} {
		t.Run(kind.name, func(t *testing.T) {
			spec := kind.spec(t)
			store := openStore(t, spec)
			e := linkOn(t, startCloudOn(t, store), "LINK-R1")
			linked, waiting := e.badge("04DURABLE0001"), e.badge("04DURABLE0002")
			rep := e.link(t, linked)
			p := e.phone(t)
			p.open(rep.URIComplete, "alice", e.password("alice"))
			if st := p.confirm(rep.Code); st != http.StatusOK {
				t.Fatalf("confirm: %d %s", st, p.last)
			}
			pending := e.link(t, waiting)
			if pending.Error != nil {
				t.Fatalf("second code: %+v", pending.Error)
			}
			e.cl.Disconnect(0)
			if err := e.c.Close(); err != nil {
				t.Fatal(err)
			}
			if err := store.Close(); err != nil {
				t.Fatal(err)
			}

			store = openStore(t, spec)
			t.Cleanup(func() { store.Close() })
			e = linkOn(t, startCloudOn(t, store), "LINK-R2")
			if r := e.lookup(t, linked); r.Error != nil || r.User == nil || r.User.ID != "alice" {
				t.Fatalf("lookup of the phone-linked badge after a restart: %+v", r)
			}
			p = e.phone(t)
			p.open(e.c.URL+"/device/badge?code="+pending.Code, "bob", e.password("bob"))
			if st := p.confirm(pending.Code); st != http.StatusOK || !strings.Contains(p.last, "is now linked to") {
				t.Fatalf("confirm after a restart of a code issued before: %d %s", st, p.last)
			}
			if r := e.lookup(t, waiting); r.Error != nil || r.User == nil || r.User.ID != "bob" {
				t.Fatalf("lookup of the badge linked after the restart: %+v", r)
			}
		})
	}
}

// Two devclouds on one PostgreSQL database: a code issued through A's job service is
// confirmed on B's page and both look the badge up; two codes for another badge confirmed at
// once by alice on A and bob on B give it to exactly one of them.
func TestBadgeLinkAcrossReplicas(t *testing.T) {
	spec := pgtest.Database(t)
	sa, sb := openStore(t, spec), openStore(t, spec)
	t.Cleanup(func() { sa.Close(); sb.Close() })
	a := linkOn(t, startCloudOn(t, sa), "LINK-A")
	b := linkOn(t, startCloudOn(t, sb), "LINK-B")
	badge := a.badge("04REPLICA0001")
	rep := a.link(t, badge)
	if rep.Error != nil {
		t.Fatalf("code from A: %+v", rep.Error)
	}
	p := b.phone(t)
	p.open(b.c.URL+"/device/badge?code="+rep.Code, "alice", b.password("alice"))
	if st := p.confirm(rep.Code); st != http.StatusOK {
		t.Fatalf("A's code confirmed on B: %d %s", st, p.last)
	}
	for name, e := range map[string]*linkEnv{"A": a, "B": b} {
		if r := e.lookup(t, badge); r.Error != nil || r.User == nil || r.User.ID != "alice" {
			t.Fatalf("lookup on %s: %+v", name, r)
		}
	}

	contested := a.badge("04REPLICA0002")
	ra, rb := a.link(t, contested), b.link(t, contested)
	pa, pb := a.phone(t), b.phone(t)
	pa.open(a.c.URL+"/device/badge?code="+ra.Code, "alice", a.password("alice"))
	pb.open(b.c.URL+"/device/badge?code="+rb.Code, "bob", b.password("bob"))
	var wg sync.WaitGroup
	var sta, stb int
	wg.Add(2)
	go func() { defer wg.Done(); sta = pa.confirm(ra.Code) }()
	go func() { defer wg.Done(); stb = pb.confirm(rb.Code) }()
	wg.Wait()
	winner := ""
	switch {
	case sta == http.StatusOK && stb == http.StatusConflict:
		winner = "alice"
	case stb == http.StatusOK && sta == http.StatusConflict:
		winner = "bob"
	default:
		t.Fatalf("alice on A: %d, bob on B: %d; want one 200 and one 409", sta, stb)
	}
	for name, e := range map[string]*linkEnv{"A": a, "B": b} {
		if r := e.lookup(t, contested); r.User == nil || r.User.ID != winner {
			t.Fatalf("lookup on %s: %+v, want %s", name, r, winner)
		}
	}
	if r := a.link(t, contested); r.Error == nil || r.Error.Code != protocol.CodeBadgeLinked {
		t.Fatalf("code for the contested badge after it was linked: %+v", r)
	}
}
