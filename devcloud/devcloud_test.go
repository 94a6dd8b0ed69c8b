package devcloud

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"labelstation/devcloud/seed"
)

func start(t *testing.T) *Cloud {
	t.Helper()
	sd, err := seed.Load(filepath.Join("..", "examples", "devcloud-seed.json"))
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
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Start(ctx, Options{HTTP: h, MQTT: m, Seed: sd})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

type apiErr struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	ID      string `json:"id"`
}

func do(t *testing.T, req *http.Request) (int, []byte, http.Header) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

func form(t *testing.T, c *Cloud, token string, v url.Values) *http.Request {
	req, err := http.NewRequest(http.MethodPost, c.URL+"/v1/jobs", strings.NewReader(v.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

func TestSubmitRejectsMalformedJobsNamingTheField(t *testing.T) {
	c := start(t)
	tok, err := c.UserToken(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	good := "name,street,zip,city,tracking\nAda,1 Road,123,Town,TRK1\n"
	tests := []struct {
		name      string
		v         url.Values
		wantField string
	}{
		{"no title", url.Values{"format": {"shipping"}, "data": {good}}, "title:"},
		{"blank title", url.Values{"title": {"  "}, "format": {"shipping"}, "data": {good}}, "title:"},
		{"no format", url.Values{"title": {"t"}, "data": {good}}, "format:"},
		{"unknown layout", url.Values{"title": {"t"}, "format": {"nope"}, "data": {good}}, `format: unknown layout "nope"`},
		{"no data", url.Values{"title": {"t"}, "format": {"shipping"}}, "data:"},
		{"unknown data format", url.Values{"title": {"t"}, "format": {"shipping"}, "data": {good}, "data_format": {"yaml"}}, "data_format:"},
		{"broken json", url.Values{"title": {"t"}, "format": {"shipping"}, "data": {`[{"name": "a"`}}, "data:"},
		{"csv with a broken quote", url.Values{"title": {"t"}, "format": {"shipping"}, "data": {"name,city\n\"Ada,Town\n"}}, "data:"},
		{"record lacks a layout field", url.Values{"title": {"t"}, "format": {"shipping"}, "data": {"name,tracking\nAda,TRK1\n"}}, `data: record 1: `},
		{"header only", url.Values{"title": {"t"}, "format": {"shipping"}, "data": {"name,street,zip,city,tracking\n"}}, "data:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, _ := do(t, form(t, c, tok, tt.v))
			var e apiErr
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("body is not a JSON error: %s", body)
			}
			if status != http.StatusBadRequest || e.Code != "invalid_request" || e.ID == "" {
				t.Fatalf("got %d %+v, want 400 invalid_request with an id", status, e)
			}
			if !strings.Contains(e.Message, tt.wantField) {
				t.Errorf("message %q does not name %q", e.Message, tt.wantField)
			}
		})
	}
	if held, err := c.Jobs.Store().List("alice"); err != nil || len(held) != 0 {
		t.Fatalf("rejected submissions left jobs: %+v", held)
	}
}

func TestSubmitAuthentication(t *testing.T) {
	c := start(t)
	v := url.Values{"title": {"t"}, "format": {"shipping"}, "data": {"name,street,zip,city,tracking\nAda,1 Road,1,Town,TRK1\n"}}
	status, body, hdr := do(t, form(t, c, "", v))
	if status != http.StatusUnauthorized || !strings.Contains(hdr.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("no token: %d %s", status, body)
	}
	status, body, _ = do(t, form(t, c, "not-a-token", v))
	if status != http.StatusUnauthorized {
		t.Fatalf("bad token: %d %s", status, body)
	}
	tok, err := c.UserToken(context.Background(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	// Seed 000: the token may come as the oauth_token parameter instead of the header.
	v.Set("oauth_token", tok)
	status, body, _ = do(t, form(t, c, "", v))
	if status != http.StatusCreated {
		t.Fatalf("oauth_token parameter: %d %s", status, body)
	}
	var j struct {
		ID, User, State string
		Labels          int
	}
	json.Unmarshal(body, &j)
	if j.User != "bob" || j.State != "held" || j.Labels != 1 {
		t.Fatalf("job = %+v", j)
	}
	// Alice does not see Bob's job.
	atok, _ := c.UserToken(context.Background(), "alice")
	req, _ := http.NewRequest(http.MethodGet, c.URL+"/v1/jobs/"+j.ID, nil)
	req.Header.Set("Authorization", "Bearer "+atok)
	if status, _, _ := do(t, req); status != http.StatusNotFound {
		t.Fatalf("alice reading bob's job: %d", status)
	}
}

func TestSubmitFormatsAndJSONP(t *testing.T) {
	c := start(t)
	tok, _ := c.UserToken(context.Background(), "alice")

	// JSON body with records inline: copies multiply labels.
	body := `{"title":"json","format":"shipping","data":[{"name":"A","street":"s","zip":"1","city":"c","tracking":"1","copies":"2"},{"name":"B","street":"s","zip":"2","city":"c","tracking":"2"}]}`
	req, _ := http.NewRequest(http.MethodPost, c.URL+"/v1/jobs", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	status, b, _ := do(t, req)
	if status != http.StatusCreated || !strings.Contains(string(b), `"labels":3`) {
		t.Fatalf("json submit: %d %s", status, b)
	}

	// Multipart upload; the format comes from the file name.
	var mp bytes.Buffer
	w := multipart.NewWriter(&mp)
	w.WriteField("title", "xml")
	w.WriteField("format", "shipping")
	fw, _ := w.CreateFormFile("data", "records.xml")
	fw.Write([]byte(`<records><record><name>A</name><street>s</street><zip>1</zip><city>c</city><tracking>1</tracking></record><record name="B" street="s" zip="2" city="c" tracking="2"/></records>`))
	w.Close()
	req, _ = http.NewRequest(http.MethodPost, c.URL+"/v1/jobs", &mp)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+tok)
	status, b, _ = do(t, req)
	if status != http.StatusCreated || !strings.Contains(string(b), `"data_format":"xml"`) || !strings.Contains(string(b), `"labels":2`) {
		t.Fatalf("multipart xml submit: %d %s", status, b)
	}

	// JSONP callback wraps the answer; a callback that is not a plain name is ignored.
	v := url.Values{"title": {"t"}, "format": {"shipping"}, "data": {"name,street,zip,city,tracking\nA,s,1,c,1\n"}, "callback": {"done"}}
	status, b, hdr := do(t, form(t, c, tok, v))
	if status != http.StatusCreated || !strings.HasPrefix(string(b), "done({") || hdr.Get("Content-Type") != "application/javascript" {
		t.Fatalf("jsonp: %d %s %s", status, hdr.Get("Content-Type"), b)
	}
	// A callback that is neither a plain name nor an http(s) URL is refused, naming the field.
	v.Set("callback", "alert(1);x")
	status, b, _ = do(t, form(t, c, tok, v))
	if status != http.StatusBadRequest || !strings.HasPrefix(string(b), "{") || !strings.Contains(string(b), `"callback: `) {
		t.Fatalf("unsafe jsonp name: %d %s", status, b)
	}
}

func TestSubmitTooLarge(t *testing.T) {
	c := start(t)
	tok, _ := c.UserToken(context.Background(), "alice")
	big := strings.Repeat("x", 17<<20)
	status, b, _ := do(t, form(t, c, tok, url.Values{"title": {"t"}, "format": {"shipping"}, "data": {big}}))
	if status != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "too_large") {
		t.Fatalf("got %d %.200s", status, b)
	}
}
