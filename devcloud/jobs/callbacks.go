package jobs

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"labelstation/internal/supervise"
)

// Callback request headers.
const (
	// HeaderSignature carries "t=<unix seconds>,v1=<hex HMAC-SHA256>" (SignCallback).
	HeaderSignature = "X-Labelstation-Signature"
	HeaderEvent     = "X-Labelstation-Event"
	HeaderDelivery  = "X-Labelstation-Delivery"
)

// DefaultCallbackTolerance is how far a callback's timestamp may be from the receiver's clock
// in VerifyCallback: a captured call replayed later than that is refused.
const DefaultCallbackTolerance = 5 * time.Minute

// callbackLease is how long a claimed call is kept from other senders: longer than one attempt.
const callbackLease = time.Minute

// SignCallback returns the signature header value of a callback body sent at t: the HMAC-SHA256,
// keyed with the application's secret, of the decimal Unix time, a dot, and the body.
func SignCallback(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(callbackMAC(secret, ts, body))
}

func callbackMAC(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// VerifyCallback checks a callback as a receiver should: the signature header is well formed,
// its timestamp within tolerance of now (no replay of an old call), and its MAC is the
// body's under secret.
func VerifyCallback(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var macs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				macs = append(macs, b)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(macs) == 0 {
		return fmt.Errorf("jobs: callback signature %q: want t=<unix seconds>,v1=<hex>", header)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("jobs: callback signed at %s, %v from now (tolerance %v)", time.Unix(sec, 0).UTC().Format(time.RFC3339), d.Round(time.Second), tolerance)
	}
	want := callbackMAC(secret, ts, body)
	for _, m := range macs {
		if hmac.Equal(m, want) {
			return nil
		}
	}
	return errors.New("jobs: callback signature does not match the body")
}

func (s *Service) callbackLoop(ctx context.Context) error {
	t := time.NewTicker(s.api.opt.CallbackPoll)
	defer t.Stop()
	for {
		if err := s.DeliverCallbacks(ctx); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.api.kick:
		case <-t.C:
		}
	}
}

// DeliverCallbacks sends every queued callback that is due, once each: a 2xx answer removes
// it; a failure schedules the next attempt by the backoff, or gives it up past
// CallbackMaxAge. Only a store error is returned.
func (s *Service) DeliverCallbacks(ctx context.Context) error {
	for ctx.Err() == nil {
		due, err := s.store.ClaimCallbacks(s.now(), callbackLease, 20)
		if err != nil || len(due) == 0 {
			return err
		}
		for _, cb := range due {
			if err := s.deliver(ctx, cb); err != nil {
				return err
			}
		}
	}
	return nil
}

// deliver makes one attempt at cb and records the outcome.
func (s *Service) deliver(ctx context.Context, cb Callback) error {
	sendErr := s.send(ctx, cb)
	if sendErr == nil {
		s.log.Info("jobs: callback delivered", "callback", cb.ID, "url", cb.URL, "attempts", cb.Attempts+1)
		return s.store.DeleteCallback(cb.ID)
	}
	now := s.now()
	if now.Sub(cb.Created) >= s.api.opt.CallbackMaxAge {
		s.log.Error("jobs: callback given up", "callback", cb.ID, "url", cb.URL, "attempts", cb.Attempts+1, "err", sendErr)
		return s.store.DeleteCallback(cb.ID)
	}
	next := now.Add(retryDelay(s.api.opt.CallbackBackoff, cb.Attempts))
	s.log.Warn("jobs: callback failed; will retry", "callback", cb.ID, "url", cb.URL, "attempts", cb.Attempts+1, "next", next, "err", sendErr)
	return s.store.RetryCallback(cb.ID, cb.Attempts+1, next, sendErr.Error())
}

// retryDelay is the wait after the attempt numbered attempts (0 for the first) failed: the
// backoff stepped that many times.
func retryDelay(b supervise.Backoff, attempts int) time.Duration {
	b.Reset()
	d := b.Next()
	for range min(attempts, 40) {
		d = b.Next()
	}
	return d
}

func (s *Service) send(ctx context.Context, cb Callback) error {
	var a App
	ok := false
	if s.opt.Apps != nil {
		a, ok = s.opt.Apps.App(cb.App)
	}
	if !ok {
		return fmt.Errorf("application %q is not registered: no secret to sign with", cb.App)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cb.URL, bytes.NewReader(cb.Body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "labelstation-devcloud")
	req.Header.Set(HeaderEvent, cb.Event)
	req.Header.Set(HeaderDelivery, cb.ID)
	req.Header.Set(HeaderSignature, SignCallback(a.Secret, s.now(), cb.Body))
	resp, err := s.api.opt.CallbackClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %s", cb.URL, resp.Status)
	}
	return nil
}
