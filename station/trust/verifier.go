package trust

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"labelstation/protocol"
)

// VerifierOptions configures a Verifier.
type VerifierOptions struct {
	Station string           // this station's id: the audience of its own topics
	Groups  func() []string  // the fleet groups it belongs to; nil: none
	Keys    KeySource        // the cloud's keys
	Window  *Window          // the replay window
	Now     func() time.Time // nil: time.Now
}

// Verifier opens sealed cloud → station messages: signature by a cloud key, addressed to this
// station or one of its groups, fresh, not replayed.
type Verifier struct{ opt VerifierOptions }

// NewVerifier checks opt.
func NewVerifier(opt VerifierOptions) (*Verifier, error) {
	if opt.Station == "" || opt.Keys == nil || opt.Window == nil {
		return nil, errors.New("trust: verifier: Station, Keys and Window are required")
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Verifier{opt: opt}, nil
}

// Open verifies payload received on topic and returns the message inside. settle must be called
// once: settle(true) records the message in the replay window when it was acted on (a job
// journaled), settle(false) when it was left with the broker after a failure, so its redelivery
// is not refused as a replay. An error wrapping ErrKeysUnavailable is not a refusal: the keys
// could not be fetched.
func (v *Verifier) Open(ctx context.Context, topic string, payload []byte) (msg []byte, settle func(acted bool) error, err error) {
	aud, _, err := protocol.Addressee(topic)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", protocol.ErrAddress, err)
	}
	if !v.addressedToMe(aud) {
		return nil, nil, fmt.Errorf("%w: %s is not for station %s", protocol.ErrAddress, topic, v.opt.Station)
	}
	var keyErr error
	c, msg, err := protocol.Open(payload, topic, func(kid string) (*jose.JSONWebKey, error) {
		k, err := v.opt.Keys.Key(ctx, kid)
		keyErr = err
		return k, err
	})
	if err != nil {
		if errors.Is(keyErr, ErrKeysUnavailable) {
			return nil, nil, keyErr
		}
		return nil, nil, err
	}
	now := v.opt.Now()
	if err := c.Fresh(now); err != nil {
		return nil, nil, err
	}
	settle, err = v.opt.Window.Admit(topic, c, v.opt.Now)
	if err != nil {
		return nil, nil, err
	}
	return msg, settle, nil
}

func (v *Verifier) addressedToMe(aud string) bool {
	if aud == v.opt.Station {
		return true
	}
	if g, ok := strings.CutPrefix(aud, protocol.GroupAudience); ok && g != "" && v.opt.Groups != nil {
		return slices.Contains(v.opt.Groups(), g)
	}
	return false
}
