package devcloud

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"labelstation/protocol"
	"labelstation/station/trust"
)

// Linking an unknown badge by phone, over real sockets: a station enrolled with real tokens asks
// through the embedded broker, opens the sealed reply with the issuer's keys, and a person
// confirms on the page over HTTP.

type linkEnv struct {
	*attackEnv
	st      station
	cl      *client
	v       *trust.Verifier
	key     []byte
	replies chan paho.Message
}

func startLink(t *testing.T) *linkEnv {
	t.Helper()
	return linkOn(t, startAttackCloud(t), "LINK-0001")
}

// linkOn enrolls a station with serial on the cloud of ae and connects it, ready to ask for
// codes.
func linkOn(t *testing.T, ae *attackEnv, serial string) *linkEnv {
	t.Helper()
	e := &linkEnv{attackEnv: ae, replies: make(chan paho.Message, 16)}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := e.c.Jobs.WaitOnline(ctx); err != nil {
		t.Fatal(err)
	}
	e.st = e.enroll(serial)
	e.cl = mustConnect(t, e.c.Broker.Addr(), e.st.id, e.st.id, e.st.access)
	if codes := e.cl.subscribe(t, protocol.StationFilter(e.st.id)); codes[0] == 0x80 {
		t.Fatal("the station may not read its own subtree")
	}
	dir := t.TempDir()
	keys, err := trust.OpenKeys(trust.KeysOptions{URL: e.c.URL + "/oauth/keys", HTTP: &http.Client{Timeout: waitFor},
		File: filepath.Join(dir, trust.KeysFile), MinRefetch: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	w, err := trust.OpenWindow(filepath.Join(dir, trust.WindowFile))
	if err != nil {
		t.Fatal(err)
	}
	if e.v, err = trust.NewVerifier(trust.VerifierOptions{Station: e.st.id, Keys: keys, Window: w, Now: e.clock.Now}); err != nil {
		t.Fatal(err)
	}
	var fleet struct {
		Badge struct {
			HashKey string `json:"hash_key"`
		} `json:"badge"`
	}
	json.Unmarshal(e.c.Jobs.DefaultFleetConfig(), &fleet)
	if e.key, err = hex.DecodeString(fleet.Badge.HashKey); err != nil || len(e.key) == 0 {
		t.Fatalf("badge key: %v", err)
	}
	return e
}

// ask publishes a request on leaf as the station and opens the sealed reply with the same req.
func (e *linkEnv) ask(t *testing.T, leaf, replyLeaf string, req any, reqID string, out any) {
	t.Helper()
	b, _ := json.Marshal(req)
	e.cl.publish(t, protocol.StationTopic(e.st.id, leaf), false, string(b))
	topic := protocol.StationTopic(e.st.id, replyLeaf)
	deadline := time.After(waitFor)
	for {
		select {
		case m := <-e.cl.msgs:
			if m.Topic() != topic {
				continue
			}
			msg, settle, err := e.v.Open(context.Background(), m.Topic(), m.Payload())
			if err != nil {
				t.Fatalf("reply on %s does not verify: %v", replyLeaf, err)
			}
			settle(true)
			var head struct {
				Req string `json:"req"`
			}
			if json.Unmarshal(msg, &head); head.Req != reqID {
				continue
			}
			if err := protocol.Decode(msg, out); err != nil {
				t.Fatal(err)
			}
			return
		case <-deadline:
			t.Fatalf("no reply on %s", replyLeaf)
		}
	}
}

// await opens the next sealed message on one of the station's leaves.
func (e *linkEnv) await(t *testing.T, leaf string, out any) {
	t.Helper()
	topic := protocol.StationTopic(e.st.id, leaf)
	deadline := time.After(waitFor)
	for {
		select {
		case m := <-e.cl.msgs:
			if m.Topic() != topic {
				continue
			}
			msg, settle, err := e.v.Open(context.Background(), m.Topic(), m.Payload())
			if err != nil {
				t.Fatalf("message on %s does not verify: %v", leaf, err)
			}
			settle(true)
			if err := protocol.Decode(msg, out); err != nil {
				t.Fatal(err)
			}
			return
		case <-deadline:
			t.Fatalf("nothing on %s", leaf)
		}
	}
}

func (e *linkEnv) badge(card string) string { return protocol.BadgeHash(e.key, card) }

func (e *linkEnv) link(t *testing.T, badge string) protocol.BadgeLinkReply {
	t.Helper()
	req := protocol.BadgeLinkRequest{V: protocol.Version, Req: "link-" + badge[:8] + "-" + e.clock.Now().Format("150405.000000000"), Badge: badge}
	var rep protocol.BadgeLinkReply
	e.ask(t, protocol.LeafBadgeLink, protocol.LeafBadgeLinkReply, req, req.Req, &rep)
	return rep
}

func (e *linkEnv) lookup(t *testing.T, badge string) protocol.LookupReply {
	t.Helper()
	req := protocol.LookupRequest{V: protocol.Version, Req: "look-" + badge[:8] + "-" + e.clock.Now().Format("150405.000000000"), Badge: badge}
	var rep protocol.LookupReply
	e.ask(t, protocol.LeafLookup, protocol.LeafLookupReply, req, req.Req, &rep)
	return rep
}

func (e *linkEnv) password(user string) string {
	for _, u := range e.c.Seed.Users {
		if u.ID == user {
			return u.Password
		}
	}
	return ""
}

// phone is a person's browser: cookies, the last page, its CSRF token.
type phone struct {
	t    *testing.T
	base string
	c    *http.Client
	last string
}

func (e *linkEnv) phone(t *testing.T) *phone {
	jar, _ := cookiejar.New(nil)
	return &phone{t: t, base: e.c.URL, c: &http.Client{Jar: jar, Timeout: waitFor}}
}

func (p *phone) do(req *http.Request) int {
	p.t.Helper()
	resp, err := p.c.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	p.last = string(b)
	return resp.StatusCode
}

func (p *phone) get(u string) int {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return p.do(req)
}

func (p *phone) post(path string, v url.Values) int {
	req, _ := http.NewRequest(http.MethodPost, p.base+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return p.do(req)
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func (p *phone) csrf() string {
	p.t.Helper()
	m := csrfField.FindStringSubmatch(p.last)
	if m == nil {
		p.t.Fatalf("no CSRF token on the page: %s", p.last)
	}
	return m[1]
}

// open follows the QR code's URL and signs in on the form it shows.
func (p *phone) open(u, user, password string) int {
	p.t.Helper()
	if st := p.get(u); st != http.StatusOK || !strings.Contains(p.last, `action="/device/badge/login"`) {
		p.t.Fatalf("QR URL: %d, want the sign-in form: %s", st, p.last)
	}
	code := regexp.MustCompile(`name="code" value="([^"]*)"`).FindStringSubmatch(p.last)
	return p.post("/device/badge/login", url.Values{"user": {user}, "password": {password}, "code": {code[1]}, "csrf_token": {p.csrf()}})
}

func (p *phone) confirm(code string) int {
	return p.post("/device/badge", url.Values{"code": {code}, "action": {"link"}, "csrf_token": {p.csrf()}})
}

func (e *linkEnv) submit(t *testing.T, user, title string) string {
	t.Helper()
	tok, err := e.c.UserToken(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	w.WriteField("title", title)
	w.WriteField("format", "shipping")
	fw, _ := w.CreateFormFile("data", "records.csv")
	fw.Write([]byte("name,street,zip,city,tracking\nAda,1 Road,123,Town,TRK1\n"))
	w.Close()
	req, _ := http.NewRequest(http.MethodPost, e.c.URL+"/v1/jobs", &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+tok)
	status, b, _ := do(t, req)
	if status != http.StatusCreated {
		t.Fatalf("submit: %d %s", status, b)
	}
	var j struct{ ID string }
	json.Unmarshal(b, &j)
	return j.ID
}

// An unknown badge: the station asks for a code, Alice opens the QR's URL, signs in, sees the
// badge's last hex digits and confirms; the station's next lookup finds her held job. The code
// is used up.
func TestBadgeLinkRequestConfirmLookup(t *testing.T) {
	e := startLink(t)
	job := e.submit(t, "alice", "Shelf tags")
	badge := e.badge("04C0FFEE112233")
	if r := e.lookup(t, badge); r.Error == nil || r.Error.Code != protocol.CodeUnknownBadge {
		t.Fatalf("lookup before linking: %+v", r)
	}
	rep := e.link(t, badge)
	if rep.Error != nil || rep.Check() != nil || rep.ExpiresIn != 300 || rep.URI != e.c.URL+"/device/badge" ||
		rep.URIComplete != rep.URI+"?code="+rep.Code {
		t.Fatalf("link reply: %+v (%v)", rep, rep.Check())
	}
	p := e.phone(t)
	if st := p.open(rep.URIComplete, "alice", e.password("alice")); st != http.StatusOK {
		t.Fatalf("sign in: %d %s", st, p.last)
	}
	tail := badge[len(badge)-4:]
	if !strings.Contains(p.last, "Link badge <span class=\"tail\">…"+tail+"</span> to Alice Adler?") {
		t.Fatalf("confirmation page does not ask about …%s for Alice: %s", tail, p.last)
	}
	if strings.Contains(p.last, badge[:len(badge)-4]) {
		t.Fatalf("the page shows more of the badge hash than its last digits")
	}
	// A post without the page's token changes nothing.
	if st := p.post("/device/badge", url.Values{"code": {rep.Code}, "action": {"link"}}); st != http.StatusForbidden {
		t.Fatalf("post without CSRF token: %d", st)
	}
	if r := e.lookup(t, badge); r.Error == nil {
		t.Fatalf("linked without the CSRF token: %+v", r)
	}
	if st := p.confirm(rep.Code); st != http.StatusOK || !strings.Contains(p.last, "is now linked to Alice Adler") {
		t.Fatalf("confirm: %d %s", st, p.last)
	}
	// The station showing the code hears that it was used.
	var linked protocol.BadgeLinked
	e.await(t, protocol.LeafBadgeLinked, &linked)
	if linked.Code != rep.Code || linked.User.ID != "alice" || linked.User.Name != "Alice Adler" {
		t.Fatalf("badge linked notice: %+v", linked)
	}
	r := e.lookup(t, badge)
	if r.Error != nil || r.User == nil || r.User.ID != "alice" || len(r.Jobs) != 1 || r.Jobs[0].ID != job {
		t.Fatalf("lookup after linking: %+v, want alice with %s", r, job)
	}
	// Single use.
	if st := p.confirm(rep.Code); st != http.StatusGone || !strings.Contains(p.last, "used already") {
		t.Fatalf("second confirm: %d %s", st, p.last)
	}
	// The badge is Alice's now: no code for it any more.
	if r := e.link(t, badge); r.Error == nil || r.Error.Code != protocol.CodeBadgeLinked || r.Code != "" {
		t.Fatalf("link request for a linked badge: %+v", r)
	}
}

// A code past its five minutes links nothing, and the page says it expired.
func TestBadgeLinkCodeExpires(t *testing.T) {
	e := startLink(t)
	badge := e.badge("04AAAA5555")
	rep := e.link(t, badge)
	p := e.phone(t)
	p.open(rep.URIComplete, "alice", e.password("alice"))
	if !strings.Contains(p.last, "Link badge") {
		t.Fatalf("confirmation page: %s", p.last)
	}
	e.clock.Advance(5*time.Minute + time.Second)
	if st := p.confirm(rep.Code); st != http.StatusGone || !strings.Contains(p.last, "expired") {
		t.Fatalf("confirm after expiry: %d %s", st, p.last)
	}
	if st := p.get(rep.URIComplete); st != http.StatusGone || !strings.Contains(p.last, "expired") {
		t.Fatalf("page after expiry: %d %s", st, p.last)
	}
	if r := e.lookup(t, badge); r.Error == nil || r.Error.Code != protocol.CodeUnknownBadge {
		t.Fatalf("an expired code linked the badge: %+v", r)
	}
}

// A badge that belongs to someone is refused: a seed badge gets no code, and of two codes for
// one badge, the second person to confirm is told it is someone else's.
func TestBadgeLinkAlreadyLinkedRefused(t *testing.T) {
	e := startLink(t)
	if r := e.link(t, e.badge("04A1B2C3D4E580")); r.Error == nil || r.Error.Code != protocol.CodeBadgeLinked {
		t.Fatalf("link request for Alice's seed badge: %+v", r)
	}
	badge := e.badge("04BEEF0001")
	first, second := e.link(t, badge), e.link(t, badge)
	if first.Code == second.Code {
		t.Fatalf("two requests got the same code %s", first.Code)
	}
	bob := e.phone(t)
	bob.open(first.URIComplete, "bob", e.password("bob"))
	if st := bob.confirm(first.Code); st != http.StatusOK {
		t.Fatalf("bob confirms: %d %s", st, bob.last)
	}
	alice := e.phone(t)
	if st := alice.open(second.URIComplete, "alice", e.password("alice")); st != http.StatusOK {
		t.Fatalf("alice opens the second code: %d %s", st, alice.last)
	}
	if st := alice.confirm(second.Code); st != http.StatusConflict || !strings.Contains(alice.last, "already linked to someone else") {
		t.Fatalf("alice confirms a badge that is bob's: %d %s", st, alice.last)
	}
	if r := e.lookup(t, badge); r.User == nil || r.User.ID != "bob" {
		t.Fatalf("lookup: %+v, want bob", r)
	}
}

// Codes cannot be guessed: after five wrong codes a user's look-ups are refused, a right code
// too, until fifteen minutes have passed.
func TestBadgeLinkWrongCodesRateLimited(t *testing.T) {
	e := startLink(t)
	p := e.phone(t)
	rep := e.link(t, e.badge("04DEAD0002"))
	p.open(rep.URIComplete, "bob", e.password("bob"))
	if !strings.Contains(p.last, "Link badge") {
		t.Fatalf("right code: %s", p.last)
	}
	for i, c := range []string{"BBBB-BBBB", "CCCC-CCCC", "DDDD-DDDD", "FFFF-FFFF", "GGGG-GGGG"} {
		if st := p.get(e.c.URL + "/device/badge?code=" + c); st != http.StatusNotFound {
			t.Fatalf("wrong code %d: %d %s", i+1, st, p.last)
		}
	}
	if st := p.get(rep.URIComplete); st != http.StatusTooManyRequests || !strings.Contains(p.last, "Too many wrong codes") {
		t.Fatalf("sixth look-up: %d %s", st, p.last)
	}
	if st := p.confirm(rep.Code); st != http.StatusTooManyRequests {
		t.Fatalf("confirm while paused: %d", st)
	}
	// Another user is not held up by bob's guesses.
	alice := e.phone(t)
	if st := alice.open(rep.URIComplete, "alice", e.password("alice")); st != http.StatusOK || !strings.Contains(alice.last, "Link badge") {
		t.Fatalf("alice: %d %s", st, alice.last)
	}
	e.clock.Advance(15 * time.Minute)
	fresh := e.link(t, e.badge("04DEAD0003"))
	if st := p.get(fresh.URIComplete); st != http.StatusOK || !strings.Contains(p.last, "Link badge") {
		t.Fatalf("after the pause: %d %s", st, p.last)
	}
}
