package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"labelstation/devcloud"
	"labelstation/devcloud/jobs"
	"labelstation/devcloud/seed"
)

// clock is the wall clock moved on by Advance: stations' polls keep their pace, tokens age
// on demand.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// startCloud runs a devcloud on real sockets with an injected clock; alice is a fleet admin.
func startCloud(t *testing.T, store jobs.Store) (*devcloud.Cloud, *clock, func()) {
	t.Helper()
	sd, err := seed.Load(filepath.Join("..", "devcloud-seed.json"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := devcloud.Start(ctx, devcloud.Options{HTTP: h, MQTT: m, Seed: sd, Now: clk.Now, FleetAdmins: []string{"alice"}, Store: store, PollEvery: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() { once.Do(func() { c.Close() }) }
	t.Cleanup(stop)
	return c, clk, stop
}

func password(t *testing.T, c *devcloud.Cloud, user string) string {
	t.Helper()
	for _, u := range c.Seed.Users {
		if u.ID == user {
			return u.Password
		}
	}
	t.Fatalf("no user %s", user)
	return ""
}

// register registers the example over the admin endpoint, as `stationctl app register` does.
func register(t *testing.T, c *devcloud.Cloud, token string) (int, map[string]any) {
	return registerWithIcon(t, c, token, "https://app.example/icon.png")
}

func registerWithIcon(t *testing.T, c *devcloud.Cloud, token, icon string) (int, map[string]any) {
	t.Helper()
	body := `{"client_name":"Example label app","description":"Prints parcel labels for you","logo_uri":"` + icon + `","redirect_uris":["http://127.0.0.1/callback"]}`
	req, _ := http.NewRequest(http.MethodPost, c.URL+"/oauth/register", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

func newApp(t *testing.T, c *devcloud.Cloud) *App {
	return newAppWithIcon(t, c, "https://app.example/icon.png")
}

func newAppWithIcon(t *testing.T, c *devcloud.Cloud, icon string) *App {
	t.Helper()
	admin, err := c.UserToken(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	st, reg := registerWithIcon(t, c, admin, icon)
	if st != http.StatusCreated || reg["client_id"] == nil || reg["client_secret"] == nil {
		t.Fatalf("register: %d %v", st, reg)
	}
	return New(c.URL, reg["client_id"].(string), reg["client_secret"].(string), "http://127.0.0.1/callback")
}

// signInAndAllow is the user at a browser: it follows the authorization URL, signs in on the
// consent page, allows, and follows the redirects back to the application's listener.
func signInAndAllow(t *testing.T, user, pass string) func(string) error {
	return func(authURL string) error {
		jar, _ := cookiejar.New(nil)
		b := &http.Client{Jar: jar, Timeout: 30 * time.Second}
		get := func(resp *http.Response, err error) (string, string, error) {
			if err != nil {
				return "", "", err
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			return string(body), resp.Request.URL.String(), err
		}
		field := func(page, name string) string {
			m := regexp.MustCompile(`name="` + name + `" value="([^"]+)"`).FindStringSubmatch(page)
			if m == nil {
				return ""
			}
			return m[1]
		}
		page, at, err := get(b.Get(authURL))
		if err != nil {
			return err
		}
		base := strings.SplitN(at, "/device/", 2)[0]
		page, _, err = get(b.PostForm(base+"/device/apps/login", url.Values{"user": {user}, "password": {pass},
			"id": {field(page, "id")}, "csrf_token": {field(page, "csrf_token")}}))
		if err != nil {
			return err
		}
		if !strings.Contains(page, "Example label app") || !strings.Contains(page, `id="approve"`) {
			return errors.New("no consent page after sign-in: " + page)
		}
		page, at, err = get(b.PostForm(base+"/device/apps/consent", url.Values{"action": {"approve"},
			"id": {field(page, "id")}, "csrf_token": {field(page, "csrf_token")}}))
		if err != nil {
			return err
		}
		if !strings.Contains(page, "Done.") {
			return errors.New("the browser ended at " + at + ": " + page)
		}
		return nil
	}
}

func heldFor(t *testing.T, c *devcloud.Cloud, user string) []string {
	t.Helper()
	js, err := c.Jobs.Store().List(user, jobs.StateHeld)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, j := range js {
		ids = append(ids, j.ID)
	}
	return ids
}

var parcel = Job{Title: "Parcels", Format: "shipping", Data: json.RawMessage(`[{"name":"Ada","street":"1 Road","zip":"12345","city":"Town","tracking":"TRK1"}]`)}

// TestExampleAppWholeFlow runs the example against a real devcloud over HTTP: register,
// consent, exchange, submit as the consenting user, and the three ways a token dies early or
// late: expiry (refresh works), RFC 7009 revocation of the access token (refresh works), the
// user's "revoke app" (refresh fails: authorize again).
func TestExampleAppWholeFlow(t *testing.T) {
	c, clk, _ := startCloud(t, nil)
	app := newApp(t, c)
	app.TokenFile = filepath.Join(t.TempDir(), "token.json")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := app.Authorize(ctx, signInAndAllow(t, "bob", password(t, c, "bob"))); err != nil {
		t.Fatal(err)
	}
	job, err := app.Submit(ctx, parcel)
	if err != nil {
		t.Fatal(err)
	}
	// The job is bob's, held for bob's badge; alice's list does not have it.
	if job.User != "bob" || job.State != jobs.StateHeld {
		t.Fatalf("job %+v: want held for bob", job)
	}
	if !slices.Contains(heldFor(t, c, "bob"), job.ID) || slices.Contains(heldFor(t, c, "alice"), job.ID) {
		t.Fatalf("bob's held jobs %v, alice's %v: want %s only in bob's", heldFor(t, c, "bob"), heldFor(t, c, "alice"), job.ID)
	}
	// An application's token is not an administrator's, even for an administrator.
	if st, _ := register(t, c, app.Token().AccessToken); st != http.StatusForbidden {
		t.Errorf("register with an application's token: %d, want 403", st)
	}
	bobs, err := c.UserToken(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if st, m := register(t, c, bobs); st != http.StatusForbidden {
		t.Errorf("register as bob, not an administrator: %d %v, want 403", st, m)
	}
	if st, m := register(t, c, ""); st != http.StatusUnauthorized {
		t.Errorf("register without a token: %d %v, want 401", st, m)
	}

	// The kept refresh token outlives the process.
	again := New(app.Cloud, app.Conf.ClientID, app.Conf.ClientSecret, app.Redirect)
	again.TokenFile = app.TokenFile
	if err := again.Load(); err != nil || !again.Authorized() {
		t.Fatalf("reload: %v, authorized %v", err, again.Authorized())
	}

	// 60 minutes on, the access token answers 401 (the app's own clock still thinks it valid):
	// one refresh, one retry.
	clk.Advance(61 * time.Minute)
	if _, err := again.Submit(ctx, parcel); err != nil || again.Refreshes != 1 {
		t.Fatalf("after expiry: %v, %d refreshes, want 1", err, again.Refreshes)
	}
	// Revoked early (RFC 7009): 401, refresh, retry.
	resp, err := http.PostForm(c.URL+"/oauth/revoke", url.Values{"token": {again.Token().AccessToken}, "token_type_hint": {"access_token"},
		"client_id": {again.Conf.ClientID}, "client_secret": {again.Conf.ClientSecret}})
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %v %v", err, resp)
	}
	resp.Body.Close()
	if _, err := again.Submit(ctx, parcel); err != nil || again.Refreshes != 2 {
		t.Fatalf("after revocation: %v, %d refreshes, want 2", err, again.Refreshes)
	}
	// The user revokes the app: 401, the refresh is refused, the app must ask again.
	if n, err := c.Auth.RevokeApp("bob", again.Conf.ClientID); err != nil || n != 1 {
		t.Fatalf("RevokeApp = %d, %v", n, err)
	}
	if _, err := again.Submit(ctx, parcel); !errors.Is(err, ErrReauthorize) {
		t.Fatalf("after the user revoked the app: %v, want ErrReauthorize", err)
	}
	if again.Authorized() {
		t.Error("the app still holds a refresh token after invalid_grant")
	}
	if got := len(heldFor(t, c, "bob")); got != 3 {
		t.Errorf("bob holds %d jobs, want 3", got)
	}
}

// TestAppGrantsSurviveRestart keeps the registration and the refresh grant across a devcloud
// restart on the same bolt file and PostgreSQL database.
func TestAppGrantsSurviveRestart(t *testing.T) {
	for _, kind := range []string{"bolt", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			spec := "bolt:" + filepath.Join(t.TempDir(), "devcloud.db")
			if kind == "postgres" {
				spec = testPostgres(t)
			}
			open := func() jobs.Store {
				s, err := jobs.Open(context.Background(), spec)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			s1 := open()
			c1, _, stop1 := startCloud(t, s1)
			app := newApp(t, c1)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := app.Authorize(ctx, signInAndAllow(t, "bob", password(t, c1, "bob"))); err != nil {
				t.Fatal(err)
			}
			stop1()
			s1.Close()

			s2 := open()
			t.Cleanup(func() { s2.Close() })
			c2, _, _ := startCloud(t, s2)
			// A new signing key: the old access token is dead, the refresh token is not.
			moved := New(c2.URL, app.Conf.ClientID, app.Conf.ClientSecret, app.Redirect)
			moved.tok = app.Token()
			job, err := moved.Submit(ctx, parcel)
			if err != nil || job.User != "bob" || moved.Refreshes != 1 {
				t.Fatalf("after restart: %+v, %v, %d refreshes", job, err, moved.Refreshes)
			}
		})
	}
}

// testPostgres makes a throw-away database on 127.0.0.1:5432 and returns its URL, or skips.
func testPostgres(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, role := range []string{"postgres", "root"} {
		base := "postgres://" + role + "@127.0.0.1:5432/postgres?sslmode=disable"
		name := "lrs_apps_" + strings.ToLower(strings.ReplaceAll(time.Now().Format("150405.000000"), ".", ""))
		if err := psql(ctx, base, "CREATE DATABASE "+name); err != nil {
			continue
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := psql(ctx, base, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
				t.Errorf("drop %s: %v", name, err)
			}
		})
		return strings.Replace(base, "/postgres?", "/"+name+"?", 1)
	}
	t.Skip("no PostgreSQL on 127.0.0.1:5432 with trust auth for postgres or root; start one to run this test")
	return ""
}

// psql runs one statement on a connection of its own.
func psql(ctx context.Context, url, stmt string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, stmt)
	return err
}

var updateImg = flag.Bool("update-img", false, "write the consent page screenshot to docs/img")

// TestConsentInChromium drives the consent page in headless Chromium: sign in, allow, and the
// redirect with code and state reaches the example's listener; the job it then submits lands
// in the consenting user's held jobs.
func TestConsentInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium; run without -short")
	}
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Skip("no Chromium: apt-get install -y chromium (the consent page browser test needs it)")
	}
	c, _, _ := startCloud(t, nil)
	// The application's icon, served where the browser can fetch it.
	var icon bytes.Buffer
	img := image.NewRGBA(image.Rect(0, 0, 96, 96))
	draw.Draw(img, img.Bounds(), &image.Uniform{color.RGBA{0x1a, 0x5f, 0xb4, 0xff}}, image.Point{}, draw.Src)
	draw.Draw(img, image.Rect(24, 24, 72, 72), &image.Uniform{color.White}, image.Point{}, draw.Src)
	if err := png.Encode(&icon, img); err != nil {
		t.Fatal(err)
	}
	icons := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write(icon.Bytes())
	}))
	defer icons.Close()
	app := newAppWithIcon(t, c, icons.URL+"/icon.png")

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(390, 844))
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	// The first Run starts the browser; a timeout on it would stop the browser, so the deadline
	// comes from a watchdog instead.
	watchdog := time.AfterFunc(2*time.Minute, cancel)
	defer watchdog.Stop()

	var consentText, landed string
	var iconShown bool
	ctx, cancelWait := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancelWait()
	err := app.Authorize(ctx, func(authURL string) error {
		err := chromedp.Do(bctx,
			chromedp.Navigate(authURL),
			chromedp.WaitVisible(chromedp.ID("password")),
			chromedp.SendKeys(chromedp.ID("user"), "bob"),
			chromedp.SendKeys(chromedp.ID("password"), password(t, c, "bob")),
			chromedp.Click(chromedp.CSS(`form[action="/device/apps/login"] button`)),
			chromedp.WaitVisible(chromedp.ID("approve")),
		)
		if err != nil {
			return err
		}
		if consentText, err = chromedp.Run(bctx, chromedp.Text(chromedp.CSS("main"))); err != nil {
			return err
		}
		if iconShown, err = chromedp.Run(bctx, chromedp.Evaluate[bool](`(() => { const i = document.querySelector('.app img'); return !!i && i.complete && i.naturalWidth === 96; })()`)); err != nil {
			return err
		}
		png, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
		if err != nil {
			return err
		}
		dir := t.TempDir()
		if *updateImg {
			dir = filepath.Join("..", "..", "docs", "img")
		}
		if err := os.WriteFile(filepath.Join(dir, "consent.png"), png, 0o644); err != nil {
			return err
		}
		// Authorize returns once the redirect has reached the app's listener.
		return chromedp.Do(bctx, chromedp.Click(chromedp.ID("approve")))
	})
	if err != nil {
		t.Fatal(err)
	}
	// The browser shows the app's answer; a poll that overlaps the last navigation is retried.
	for attempt := 0; ; attempt++ {
		_, err := chromedp.Run(bctx, chromedp.Poll[bool](`document.readyState === "complete" && document.body.innerText.includes("Done.")`, chromedp.WithPollingTimeout(30*time.Second)))
		if err == nil {
			break
		}
		if attempt == 3 {
			t.Fatal(err)
		}
	}
	if landed, err = chromedp.Run(bctx, chromedp.Location()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Example label app", "Prints parcel labels for you", "Send label print jobs in your name", "Signed in as Bob", "127.0.0.1"} {
		if !strings.Contains(consentText, want) {
			t.Errorf("consent page does not say %q:\n%s", want, consentText)
		}
	}
	if !iconShown {
		t.Error("consent page does not show the application's icon")
	}
	if u, err := url.Parse(landed); err != nil || u.Query().Get("code") == "" || u.Query().Get("state") == "" || u.Path != "/callback" {
		t.Errorf("the browser landed on %q, want the app's /callback with code and state", landed)
	}
	job, err := app.Submit(ctx, parcel)
	if err != nil {
		t.Fatal(err)
	}
	if job.User != "bob" || !slices.Contains(heldFor(t, c, "bob"), job.ID) {
		t.Fatalf("job %+v not among bob's held jobs %v", job, heldFor(t, c, "bob"))
	}
}

// TestAppTokenIsNotAnAdminToken: an administrator's consent lets an application submit jobs in
// the administrator's name, not manage the fleet or register applications.
func TestAppTokenIsNotAnAdminToken(t *testing.T) {
	c, _, _ := startCloud(t, nil)
	app := newApp(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := app.Authorize(ctx, signInAndAllow(t, "alice", password(t, c, "alice"))); err != nil {
		t.Fatal(err)
	}
	own, err := c.UserToken(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	fleet := func(tok string) int {
		req, _ := http.NewRequest(http.MethodGet, c.URL+"/v1/fleet/stations", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := fleet(own); st != http.StatusOK {
		t.Fatalf("fleet API with alice's own token: %d", st)
	}
	if st := fleet(app.Token().AccessToken); st != http.StatusUnauthorized {
		t.Errorf("fleet API with the app's token for alice: %d, want 401", st)
	}
	if st, _ := register(t, c, app.Token().AccessToken); st != http.StatusForbidden {
		t.Errorf("registration with the app's token for alice: %d, want 403", st)
	}
	if job, err := app.Submit(ctx, parcel); err != nil || job.User != "alice" {
		t.Fatalf("submit: %+v, %v", job, err)
	}
}
