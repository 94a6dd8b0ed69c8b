package auth

import (
	"context"
	"net/http"
	"strings"
)

type principalKey struct{}

// PrincipalFrom returns the Principal RequireToken put in the context.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// RequireToken admits requests with a valid bearer access token (RFC 6750
// §2.1) and answers everything else 401 with the WWW-Authenticate challenge
// of RFC 6750 §3, so clients know to refresh and retry.
func (s *Server) RequireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="devcloud"`)
			http.Error(w, "missing bearer token", http.StatusUnauthorized)
			return
		}
		p, err := s.Verify(r.Context(), tok)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="devcloud", error="invalid_token"`)
			http.Error(w, "invalid or expired token", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}
