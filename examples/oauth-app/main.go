// Command oauth-app is an example application that prints labels for whoever authorizes it.
// It walks the whole flow against devcloud: it prints the authorization URL, waits on a
// loopback redirect for the code (authorization code flow with PKCE), exchanges it for a refresh
// token it keeps in a file, submits a job with a 60-minute access token, and on a 401 refreshes
// and tries once more.
//
//	go run ./examples/oauth-app -cloud http://127.0.0.1:8780 -client app-… -secret …
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "oauth-app:", err)
		os.Exit(1)
	}
}

func run() error {
	cloud := flag.String("cloud", "http://127.0.0.1:8780", "devcloud's base URL (the OAuth issuer)")
	id := flag.String("client", "", "the application's client id (from `stationctl app register`)")
	secret := flag.String("secret", os.Getenv("OAUTH_APP_SECRET"), "the client secret (or $OAUTH_APP_SECRET)")
	redirect := flag.String("redirect", "http://127.0.0.1/callback", "the registered redirect URI: a loopback one, any port (RFC 8252 §7.3)")
	tokenFile := flag.String("token-file", filepath.Join(".run", "oauth-app-token.json"), "where the refresh token is kept between runs (created 0600)")
	title := flag.String("title", "Parcels from oauth-app", "job title shown on the station")
	format := flag.String("format", "shipping", "layout id")
	data := flag.String("data", `[{"name":"Ada","street":"1 Road","zip":"12345","city":"Town","tracking":"TRK1"}]`, "the job's records, JSON")
	flag.Parse()
	if *id == "" || *secret == "" {
		return errors.New("-client and -secret (or $OAUTH_APP_SECRET) are required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	app := New(*cloud, *id, *secret, *redirect)
	app.TokenFile = *tokenFile
	if err := app.Load(); err != nil {
		return err
	}
	if !app.Authorized() {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Minute) // as long as the code would live
		defer cancel()
		err := app.Authorize(ctx, func(u string) error {
			fmt.Printf("Open this page, sign in and allow the application:\n\n  %s\n\n", u)
			return nil
		})
		if err != nil {
			return err
		}
	}
	job, err := app.Submit(ctx, Job{Title: *title, Format: *format, Data: json.RawMessage(*data)})
	if err != nil {
		return err
	}
	fmt.Printf("job %s for %s: %s, %d labels; tap your badge at a station to print it\n", job.ID, job.User, job.State, job.Labels)
	return nil
}

// App is the application's side of the flow.
type App struct {
	Cloud     string
	Conf      oauth2.Config
	Redirect  string       // the registered redirect URI
	TokenFile string       // "" keeps the token in memory only
	HTTP      *http.Client // for the token endpoint and the job API
	// Refreshes counts refresh_token grants, for whoever wants to watch.
	Refreshes int

	mu  sync.Mutex
	tok *oauth2.Token
}

// New sets up an application. AuthStyleInParams: devcloud's registered applications
// authenticate with client_secret_post, and a fixed style spares the auto-detection retry.
func New(cloud, clientID, secret, redirect string) *App {
	cloud = strings.TrimSuffix(cloud, "/")
	return &App{
		Cloud: cloud, Redirect: redirect, HTTP: &http.Client{Timeout: 30 * time.Second},
		Conf: oauth2.Config{
			ClientID: clientID, ClientSecret: secret, Scopes: []string{"printing"},
			Endpoint: oauth2.Endpoint{AuthURL: cloud + "/oauth/authorize", TokenURL: cloud + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams},
		},
	}
}

// Authorized reports whether the application holds a refresh token.
func (a *App) Authorized() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.tok != nil && a.tok.RefreshToken != ""
}

// Token returns the tokens held now.
func (a *App) Token() *oauth2.Token {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tok == nil {
		return nil
	}
	t := *a.tok
	return &t
}

func (a *App) ctx(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, a.HTTP)
}

// Load reads the kept token; a missing file means not yet authorized.
func (a *App) Load() error {
	if a.TokenFile == "" {
		return nil
	}
	b, err := os.ReadFile(a.TokenFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	var t oauth2.Token
	if err := json.Unmarshal(b, &t); err != nil {
		return fmt.Errorf("token file %s: %w", a.TokenFile, err)
	}
	a.mu.Lock()
	a.tok = &t
	a.mu.Unlock()
	return nil
}

// keep stores t: the refresh token rotates on every refresh, so each new one is written down
// before it is used (the old one is dead).
func (a *App) keep(t *oauth2.Token) error {
	a.mu.Lock()
	a.tok = t
	a.mu.Unlock()
	if a.TokenFile == "" {
		return nil
	}
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(a.TokenFile), 0o700); err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	tmp := a.TokenFile + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	return os.Rename(tmp, a.TokenFile)
}

// Authorize runs the authorization code flow with PKCE: it listens on the loopback address
// of the registered redirect URI (on a free port when it has none), hands the authorization
// URL to show, and waits for the browser to come back with the code and the same state.
func (a *App) Authorize(ctx context.Context, show func(authURL string) error) error {
	ru, err := url.Parse(a.Redirect)
	if err != nil || ru.Scheme != "http" {
		return fmt.Errorf("redirect %q: want a loopback http URL", a.Redirect)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ru.Hostname(), orZero(ru.Port())))
	if err != nil {
		return fmt.Errorf("listen for the redirect: %w", err)
	}
	defer ln.Close()
	conf := a.Conf
	conf.RedirectURL = "http://" + ln.Addr().String() + ru.Path
	state, verifier := rand.Text(), oauth2.GenerateVerifier()

	type result struct {
		code string
		err  error
	}
	got := make(chan result, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != ru.Path {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		var res result
		switch {
		case q.Get("state") != state:
			// Not the answer to this request: a forged or stale redirect.
			http.Error(w, "unexpected state", http.StatusBadRequest)
			return
		case q.Get("error") != "":
			res.err = fmt.Errorf("authorization refused: %s: %s", q.Get("error"), q.Get("error_description"))
			fmt.Fprintln(w, "The application was not allowed. You can close this window.")
		default:
			res.code = q.Get("code")
			fmt.Fprintln(w, "Done. You can close this window.")
		}
		select {
		case got <- res:
		default:
		}
	})}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	defer srv.Close()

	if err := show(conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))); err != nil {
		return err
	}
	var res result
	select {
	case res = <-got:
	case err := <-serveErr:
		return fmt.Errorf("redirect listener: %w", err)
	case <-ctx.Done():
		return fmt.Errorf("waiting for the browser: %w", ctx.Err())
	}
	if res.err != nil {
		return res.err
	}
	tok, err := conf.Exchange(a.ctx(ctx), res.code, oauth2.VerifierOption(verifier))
	if err != nil {
		return fmt.Errorf("exchange the code: %w", err)
	}
	return a.keep(tok)
}

func orZero(port string) string {
	if port == "" {
		return "0"
	}
	return port
}

// ErrReauthorize says the user's authorization is gone (revoked, or the refresh token
// expired): the application must send the user through Authorize again.
var ErrReauthorize = errors.New("the authorization was withdrawn; authorize again")

// Refresh trades the refresh token for a new access token (and the next refresh token).
func (a *App) Refresh(ctx context.Context) error {
	cur := a.Token()
	if cur == nil || cur.RefreshToken == "" {
		return ErrReauthorize
	}
	a.mu.Lock()
	a.Refreshes++
	a.mu.Unlock()
	// An expiry in the past makes the token source refresh whatever the local clock says.
	tok, err := a.Conf.TokenSource(a.ctx(ctx), &oauth2.Token{RefreshToken: cur.RefreshToken, Expiry: time.Unix(1, 0)}).Token()
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
		a.mu.Lock()
		a.tok = nil
		a.mu.Unlock()
		if a.TokenFile != "" {
			os.Remove(a.TokenFile)
		}
		return fmt.Errorf("%w (%s)", ErrReauthorize, re.ErrorDescription)
	}
	if err != nil {
		return fmt.Errorf("refresh: %w", err)
	}
	return a.keep(tok)
}

// Job is a submission of records to a layout.
type Job struct {
	Title  string          `json:"title"`
	Format string          `json:"format"`
	Data   json.RawMessage `json:"data"`
}

// Submitted is the job API's answer.
type Submitted struct {
	ID     string `json:"id"`
	User   string `json:"user"`
	State  string `json:"state"`
	Labels int    `json:"labels"`
}

// Submit sends a job with the current access token. A 401 means the token expired or was
// revoked early: it refreshes once and sends the job again.
func (a *App) Submit(ctx context.Context, j Job) (Submitted, error) {
	body, err := json.Marshal(j)
	if err != nil {
		return Submitted{}, err
	}
	if t := a.Token(); t == nil || t.AccessToken == "" || !t.Valid() {
		if err := a.Refresh(ctx); err != nil {
			return Submitted{}, err
		}
	}
	for attempt := 0; ; attempt++ {
		st, resp, err := a.post(ctx, body)
		if err != nil {
			return Submitted{}, err
		}
		if st == http.StatusUnauthorized && attempt == 0 {
			if err := a.Refresh(ctx); err != nil {
				return Submitted{}, err
			}
			continue
		}
		if st != http.StatusCreated && st != http.StatusAccepted {
			return Submitted{}, fmt.Errorf("submit: %d %s", st, bytes.TrimSpace(resp))
		}
		var out Submitted
		if err := json.Unmarshal(resp, &out); err != nil {
			return Submitted{}, fmt.Errorf("submit: answer %q: %w", resp, err)
		}
		return out, nil
	}
}

func (a *App) post(ctx context.Context, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.Cloud+"/v1/jobs", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+a.Token().AccessToken)
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("submit: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}
