package devcloud

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// AppToken gets an access token for an external application with the client_credentials grant
// (RFC 6749 §4.4), as a web shop submitting jobs would.
func AppToken(ctx context.Context, tokenURL, clientID, secret string) (string, error) {
	cc := clientcredentials.Config{
		ClientID: clientID, ClientSecret: secret, TokenURL: tokenURL, Scopes: []string{"printing"},
		AuthStyle: oauth2.AuthStyleInHeader, // a fixed style: auto-detect would send every request twice on failure
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Timeout: 15 * time.Second})
	tok, err := cc.Token(ctx)
	if err != nil {
		return "", fmt.Errorf("devcloud: client_credentials for %s: %w", clientID, err)
	}
	return tok.AccessToken, nil
}

// UserToken is AppToken for the first seeded app of user.
func (c *Cloud) UserToken(ctx context.Context, user string) (string, error) {
	for _, a := range c.Seed.Apps {
		if a.User == user {
			return AppToken(ctx, c.Auth.TokenURL(), a.ClientID, a.Secret)
		}
	}
	return "", fmt.Errorf("devcloud: no app registered for user %q", user)
}
