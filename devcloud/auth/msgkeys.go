package auth

import (
	"sync"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// jwk is a public key published in the issuer's JWKS beside the token-signing key.
type jwk struct{ k jose.JSONWebKey }

func (j jwk) ID() string                         { return j.k.KeyID }
func (j jwk) Algorithm() jose.SignatureAlgorithm { return jose.SignatureAlgorithm(j.k.Algorithm) }
func (j jwk) Use() string                        { return "sig" }
func (j jwk) Key() any                           { return j.k.Key }

var _ op.Key = jwk{}

// published are the keys PublishKey added, in the order added.
type published struct {
	mu   sync.Mutex
	keys []op.Key
}

func (p *published) list() []op.Key {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]op.Key(nil), p.keys...)
}

// PublishKey adds a public signing key to the issuer's JWKS (jwks_uri), replacing one with the
// same kid. The cloud's message-signing key is published this way, so stations find it from the
// issuer's metadata alone; publishing the next key before signing with it is a rotation.
func (s *Server) PublishKey(k jose.JSONWebKey) {
	p := &s.store.published
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.keys {
		if p.keys[i].ID() == k.KeyID {
			p.keys[i] = jwk{k}
			return
		}
	}
	p.keys = append(p.keys, jwk{k})
}

// RetireKey removes a key PublishKey added; messages signed with it are refused from then on
// by every station that fetched the set again.
func (s *Server) RetireKey(kid string) {
	p := &s.store.published
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.keys {
		if p.keys[i].ID() == kid {
			p.keys = append(p.keys[:i], p.keys[i+1:]...)
			return
		}
	}
}

// KeysURL is the issuer's JWKS (the metadata's jwks_uri): where stations of a cloud whose
// stations enroll elsewhere point cloud.keys_url.
func (s *Server) KeysURL() string { return s.op.KeysEndpoint().Absolute(s.issuer) }
