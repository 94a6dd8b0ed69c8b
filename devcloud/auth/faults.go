package auth

import (
	"sync"
	"time"
)

// faults are the switches tests flip to make the server misbehave the way
// real networks and servers do (issue 4). Each counts down per use.
type faults struct {
	mu          sync.Mutex
	unavailable int // answer 503 on the device and token endpoints
	dropRefresh int // rotate the refresh token, then drop the response
	slowDown    int // answer slow_down to device-code polls regardless of pace
}

// take consumes one unit of counter c, reporting whether it was armed.
func (f *faults) take(c *int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if *c <= 0 {
		return false
	}
	*c--
	return true
}

func (f *faults) add(c *int, n int) {
	f.mu.Lock()
	*c += n
	f.mu.Unlock()
}

// FailNext makes the next n requests to the device authorization and token
// endpoints answer 503 Service Unavailable.
func (s *Server) FailNext(n int) { s.faults.add(&s.faults.unavailable, n) }

// DropNextRefresh makes the next n successful refresh_token grants rotate
// the refresh token and then close the connection without a response — the
// "lost response" of RFC 6749 §10.4 rotation: the client never sees its new
// token and the old one is already dead.
func (s *Server) DropNextRefresh(n int) { s.faults.add(&s.faults.dropRefresh, n) }

// SlowDownNext makes the next n device-code polls answer slow_down (and the
// required interval grow by 5 s each time, RFC 8628 §3.5), however paced.
func (s *Server) SlowDownNext(n int) { s.faults.add(&s.faults.slowDown, n) }

// Poll is one device-code poll as the server saw it.
type Poll struct {
	At      time.Time // by the injected clock
	Outcome string    // authorization_pending, slow_down, access_denied, expired_token, approved
	Forced  bool      // slow_down caused by SlowDownNext rather than the pace
}

// Polls returns the polls seen for userCode, oldest first.
func (s *Server) Polls(userCode string) []Poll { return s.store.polls(userCode) }
