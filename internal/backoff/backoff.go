// Package backoff is the project's one retry delay: capped exponential growth with jitter, so a
// fleet of stations that lost the same resource does not retry in step.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Policy describes the delays. The zero value is usable: 250 ms doubling to 30 s.
type Policy struct {
	Min, Max time.Duration
	// Rand returns a value in [0, n); nil means math/rand/v2. Tests inject it.
	Rand func(n int64) int64
}

// Delay is the wait before retry number attempt (0 for the first retry): Min·2^attempt capped
// at Max, then jittered to a uniform value in [d/2, d] — never more than Max, never less than
// half the step, so the cap still bounds recovery time.
func (p Policy) Delay(attempt int) time.Duration {
	lo, hi := p.Min, p.Max
	if lo <= 0 {
		lo = 250 * time.Millisecond
	}
	if hi <= 0 {
		hi = 30 * time.Second
	}
	if hi < lo {
		hi = lo
	}
	d := hi
	if attempt < 0 {
		attempt = 0
	}
	if attempt < 62 && lo<<attempt > 0 && lo<<attempt < hi {
		d = lo << attempt
	}
	r := p.Rand
	if r == nil {
		r = rand.Int64N
	}
	return d/2 + time.Duration(r(int64(d/2)+1))
}
