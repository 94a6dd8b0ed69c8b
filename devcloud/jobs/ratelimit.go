package jobs

import (
	"crypto/sha256"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// rateLimiter counts requests per key in fixed windows aligned to the clock, so Reset is the
// same instant for every caller and a client can plan around it.
type rateLimiter struct {
	limit  int
	window time.Duration
	now    func() time.Time

	mu     sync.Mutex
	start  time.Time      // of the current window
	counts map[string]int // requests per key in it
}

func newRateLimiter(limit int, window time.Duration, now func() time.Time) *rateLimiter {
	return &rateLimiter{limit: limit, window: window, now: now, counts: map[string]int{}}
}

// take counts one request of key and says whether it is allowed, how many remain and when the
// window ends.
func (l *rateLimiter) take(key string) (ok bool, remaining int, reset time.Time) {
	now := l.now()
	start := now.Truncate(l.window)
	l.mu.Lock()
	defer l.mu.Unlock()
	if !start.Equal(l.start) {
		l.start, l.counts = start, map[string]int{} // a new window forgets every key
	}
	reset = start.Add(l.window)
	n := l.counts[key]
	if n >= l.limit {
		return false, 0, reset
	}
	l.counts[key] = n + 1
	return true, l.limit - n - 1, reset
}

// rateKey names whose allowance a request uses: its access token (a hash, so the limiter does
// not keep tokens), else the client's address. The token is read from the header or the query
// only: reading a body here would bypass the submission's size limit.
func rateKey(r *http.Request) string {
	tok := r.URL.Query().Get("oauth_token")
	if h := r.Header.Get("Authorization"); h != "" {
		tok = h
	}
	if tok != "" {
		sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		return "tok:" + string(sum[:16])
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "addr:" + host
}

// rateLimit sets the X-RateLimit-* headers on every response and answers 429 with Retry-After
// once a key's requests in the window reach the limit.
func (s *Service) rateLimit(next http.Handler) http.Handler {
	l := s.api.limiter
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok, remaining, reset := l.take(rateKey(r))
		secs := int((reset.Sub(l.now()) + time.Second - 1) / time.Second)
		h := w.Header()
		h.Set("X-RateLimit-Limit", strconv.Itoa(l.limit))
		h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
		h.Set("X-RateLimit-Reset", strconv.Itoa(secs))
		if !ok {
			h.Set("Retry-After", strconv.Itoa(secs))
			s.fail(w, r, http.StatusTooManyRequests, "rate_limited", "more than %d requests in %v for this token; retry in %d s", l.limit, l.window, secs)
			return
		}
		next.ServeHTTP(w, r)
	})
}
