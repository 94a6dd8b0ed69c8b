package auth_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"labelstation/devcloud/auth"
	"labelstation/devcloud/jobs/jobstest"
	"labelstation/devcloud/records"
)

// restartable is a fixture whose server can be stopped and started again on the same address
// and store, as a restart of devcloud does.
type restartable struct {
	*fixture
	spec string
	addr string
	hs   *httptest.Server
	st   interface{ Close() error }
}

func newRestartable(t *testing.T, spec string) *restartable {
	t.Helper()
	r := &restartable{fixture: &fixture{t: t, clock: &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}}, spec: spec}
	r.start()
	return r
}

func (r *restartable) start() {
	t := r.t.(*testing.T)
	t.Helper()
	addr := r.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r.addr, r.url = ln.Addr().String(), "http://"+ln.Addr().String()
	st := jobstest.Open(t, r.spec)
	r.st = st
	r.srv, err = auth.New(auth.Options{
		Issuer:  r.url,
		Users:   []auth.User{{ID: "alice", Name: "Alice", PasswordHash: testHash(t, alicePassword)}, {ID: "bob", Name: "Bob"}},
		Apps:    []auth.App{{ClientID: "erp", Secret: "s3cret-erp", UserID: "bob"}},
		Now:     r.clock.Now,
		Records: st.(records.Store),
		// The store keeps applications and their grants too, as devcloud's does.
		AppStore: st.(auth.AppStore),
	})
	if err != nil {
		t.Fatal(err)
	}
	r.hs = httptest.NewUnstartedServer(r.srv.Handler())
	r.hs.Listener.Close()
	r.hs.Listener = ln
	r.hs.Start()
	t.Cleanup(r.hs.Close)
}

func (r *restartable) restart() {
	r.hs.Close()
	if err := r.st.Close(); err != nil {
		r.t.Fatal(err)
	}
	r.start()
}

// After a restart on the same store, enrolled stations keep their ids, their access tokens
// still verify, their refresh tokens still refresh (no pairing again), reuse of a rotated
// token is still caught, a revoked station stays revoked and tokens keep growing generations.
func TestGrantsSurviveRestart(t *testing.T) {
	jobstest.ForEach(t, func(t *testing.T, k jobstest.Kind) {
		if !k.Durable {
			t.Skip("memory is not durable")
		}
		f := newRestartable(t, k.Spec(t))
		ctx := context.Background()
		tok := f.enroll("SER-1")
		rt1 := tok["refresh_token"].(string)
		st, t2 := f.refresh(rt1)
		if st != http.StatusOK {
			t.Fatalf("refresh: %d %v", st, t2)
		}
		rt2, at2 := t2["refresh_token"].(string), t2["access_token"].(string)
		p2, err := f.srv.Verify(ctx, at2)
		if err != nil {
			t.Fatal(err)
		}
		other := f.enroll("SER-2")
		if n := f.srv.RevokeStation(other["station_id"].(string)); n != 1 {
			t.Fatalf("revoked %d grants", n)
		}
		cc := clientcredentials.Config{ClientID: "erp", ClientSecret: "s3cret-erp", TokenURL: f.srv.TokenURL()}
		app, err := cc.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}

		f.restart()

		if id, ok := f.srv.StationBySerial("SER-1"); !ok || id != p2.StationID {
			t.Fatalf("station of SER-1 after restart: %q %v, want %q", id, ok, p2.StationID)
		}
		got, err := f.srv.Verify(ctx, at2)
		if err != nil {
			t.Fatalf("access token issued before the restart: %v", err)
		}
		if got.StationID != p2.StationID || got.Enrollment != p2.Enrollment || got.EnrollmentSeq != p2.EnrollmentSeq || got.Generation != p2.Generation || got.Serial != "SER-1" {
			t.Fatalf("principal after restart %+v, want %+v", got, p2)
		}
		if p, err := f.srv.Verify(ctx, app.AccessToken); err != nil || p.UserID != "bob" {
			t.Fatalf("app token after restart: %+v %v", p, err)
		}
		st, t3 := f.refresh(rt2)
		if st != http.StatusOK || t3["station_id"] != p2.StationID {
			t.Fatalf("refresh after restart: %d %v", st, t3)
		}
		p3, err := f.srv.Verify(ctx, t3["access_token"].(string))
		if err != nil || p3.Generation <= p2.Generation || p3.Enrollment != p2.Enrollment {
			t.Fatalf("token after restart %+v (%v), want a later generation than %d in grant %s", p3, err, p2.Generation, p2.Enrollment)
		}
		if _, err := f.srv.Verify(ctx, other["access_token"].(string)); !errors.Is(err, auth.ErrInvalidToken) {
			t.Fatalf("revoked station's token after restart: %v", err)
		}
		if _, m := f.refresh(other["refresh_token"].(string)); m["error"] != "invalid_grant" {
			t.Fatalf("revoked station's refresh after restart: %v", m)
		}
		// The token rotated away before the restart is still recognised as reuse.
		if _, m := f.refresh(rt1); m["error"] != "invalid_grant" {
			t.Fatalf("reuse of a token rotated before the restart: %v", m)
		}
		if _, m := f.refresh(t3["refresh_token"].(string)); m["error"] != "invalid_grant" {
			t.Fatalf("grant not revoked by the reuse: %v", m)
		}
		// A new enrollment's order continues after the restart.
		again := f.enroll("SER-3")
		p4, err := f.srv.Verify(ctx, again["access_token"].(string))
		if err != nil || p4.EnrollmentSeq <= p2.EnrollmentSeq {
			t.Fatalf("enrollment after restart %+v %v", p4, err)
		}
	})
}
