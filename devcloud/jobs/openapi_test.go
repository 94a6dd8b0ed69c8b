package jobs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// schemaChecker validates JSON values against the subset of JSON Schema the document uses;
// a keyword it does not know fails the test rather than pass unchecked.
type schemaChecker struct{ doc map[string]any }

// ref follows a local "$ref" ("#/components/…") to its node.
func (c schemaChecker) ref(node map[string]any) (map[string]any, error) {
	for {
		r, ok := node["$ref"].(string)
		if !ok {
			return node, nil
		}
		var cur any = c.doc
		for _, part := range strings.Split(strings.TrimPrefix(r, "#/"), "/") {
			m, ok := cur.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("$ref %s: no %s", r, part)
			}
			cur = m[part]
		}
		if node, ok = cur.(map[string]any); !ok {
			return nil, fmt.Errorf("$ref %s: not an object", r)
		}
	}
}

var knownKeywords = map[string]bool{"$ref": true, "type": true, "properties": true, "required": true, "additionalProperties": true,
	"items": true, "enum": true, "format": true, "maxLength": true, "description": true}

func (c schemaChecker) check(at string, schema map[string]any, v any) error {
	schema, err := c.ref(schema)
	if err != nil {
		return err
	}
	for k := range schema {
		if !knownKeywords[k] {
			return fmt.Errorf("%s: the checker does not support keyword %q", at, k)
		}
	}
	switch schema["type"] {
	case nil:
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: %T, want an object", at, v)
		}
		props, _ := schema["properties"].(map[string]any)
		required, _ := schema["required"].([]any)
		for _, r := range required {
			if _, ok := m[r.(string)]; !ok {
				return fmt.Errorf("%s: required %q missing", at, r)
			}
		}
		for k, pv := range m {
			ps, ok := props[k].(map[string]any)
			if !ok {
				if schema["additionalProperties"] == false {
					return fmt.Errorf("%s: %q is not in the schema", at, k)
				}
				continue
			}
			if err := c.check(at+"."+k, ps, pv); err != nil {
				return err
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: %T, want an array", at, v)
		}
		for i, e := range a {
			if err := c.check(fmt.Sprintf("%s[%d]", at, i), schema["items"].(map[string]any), e); err != nil {
				return err
			}
		}
	case "string":
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: %T, want a string", at, v)
		}
		if schema["format"] == "date-time" {
			if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
				return fmt.Errorf("%s: %q is not a date-time", at, s)
			}
		}
		if n, ok := schema["maxLength"].(json.Number); ok {
			if max, _ := n.Int64(); int64(len([]rune(s))) > max {
				return fmt.Errorf("%s: longer than %d", at, max)
			}
		}
	case "integer":
		n, ok := v.(json.Number)
		if _, err := n.Int64(); !ok || err != nil {
			return fmt.Errorf("%s: %v, want an integer", at, v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s: %T, want a boolean", at, v)
		}
	default:
		return fmt.Errorf("%s: the checker does not support type %v", at, schema["type"])
	}
	if enum, ok := schema["enum"].([]any); ok && !slices.Contains(enum, v) {
		return fmt.Errorf("%s: %v is not one of %v", at, v, enum)
	}
	return nil
}

func decodeNumbers(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}

// opKey names an operation as the mux does: "GET /v1/jobs/{id}".
type opKey = string

// The document served at /v1/openapi.json names exactly the routes the handler serves, and
// for each operation the real handler answers, over HTTP, every status the document declares
// (but 500) with a body its schema accepts, and no status it does not declare.
func TestOpenAPIMatchesHandlers(t *testing.T) {
	e := newAPIEnv(t, NewMemStore(), APIOptions{}, SubmitOptions{MaxBytes: 4096, SyncBytes: 64, MaxLabels: 5})
	lim := newAPIEnv(t, NewMemStore(), APIOptions{RateLimit: 1}, SubmitOptions{})

	code, raw, h := e.call(t, http.MethodGet, "/v1/openapi.json", "", "", nil)
	if code != http.StatusOK || h.Get("Content-Type") != "application/json" {
		t.Fatalf("openapi.json: %d %s", code, h.Get("Content-Type"))
	}
	var doc map[string]any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.") {
		t.Fatalf("openapi = %q, want 3.x", v)
	}
	sc := schemaChecker{doc}

	// Operations of the document against routes of the handler.
	ops := map[opKey]map[string]any{}
	for path, item := range doc["paths"].(map[string]any) {
		for method, op := range item.(map[string]any) {
			if method == "parameters" {
				continue
			}
			ops[strings.ToUpper(method)+" "+path] = op.(map[string]any)
		}
	}
	var served, documented []string
	for _, rt := range e.svc.routes() {
		served = append(served, rt.method+" "+rt.pattern)
	}
	for k := range ops {
		documented = append(documented, k)
	}
	sort.Strings(served)
	sort.Strings(documented)
	if !slices.Equal(served, documented) {
		t.Fatalf("routes served %q, documented %q", served, documented)
	}

	// Jobs the cases act on.
	held := e.submit(t, "alice:erp", nil)
	mine := func() string { return e.submit(t, "alice:erp", nil).ID }
	out := e.submit(t, "alice:erp", nil)
	if _, err := e.store.Release("alice", "st-1", []string{out.ID}, t0); err != nil {
		t.Fatal(err)
	}
	form := "application/x-www-form-urlencoded"
	enc := func(title, data string) []byte {
		return []byte(url.Values{"title": {title}, "format": {"name"}, "data": {data}}.Encode())
	}

	type tcase struct {
		env          *apiEnv
		op           opKey
		method, path string
		token, ct    string
		body         []byte
		want         int
	}
	var cases []tcase
	add := func(op opKey, path, token, ct string, body []byte, want int) {
		method, _, _ := strings.Cut(op, " ")
		cases = append(cases, tcase{e, op, method, path, token, ct, body, want})
	}
	add("POST /v1/jobs", "/v1/jobs", "alice:erp", form, enc("t", "name\nAda\n"), 201)
	add("POST /v1/jobs", "/v1/jobs", "alice:erp", form, enc("t", "name\n"+strings.Repeat("A", 70)+"\n"), 202)
	add("POST /v1/jobs", "/v1/jobs", "alice:erp", form, enc("", "name\nAda\n"), 400)
	add("POST /v1/jobs", "/v1/jobs", "", form, enc("t", "name\nAda\n"), 401)
	add("POST /v1/jobs", "/v1/jobs", "alice:erp", form, enc("t", strings.Repeat("x", 5000)), 413)
	add("POST /v1/jobs", "/v1/jobs", "alice:erp", form, enc("t", "name\na\nb\nc\nd\ne\nf\n"), 422)
	add("GET /v1/jobs", "/v1/jobs?state=held&limit=1", "alice:erp", "", nil, 200)
	add("GET /v1/jobs", "/v1/jobs?state=lost", "alice:erp", "", nil, 400)
	add("GET /v1/jobs", "/v1/jobs", "nobody", "", nil, 401)
	add("GET /v1/jobs/{id}", "/v1/jobs/"+out.ID, "alice:erp", "", nil, 200)
	add("GET /v1/jobs/{id}", "/v1/jobs/"+held.ID, "", "", nil, 401)
	add("GET /v1/jobs/{id}", "/v1/jobs/"+held.ID, "bob:erp", "", nil, 404)
	for _, op := range []opKey{"DELETE /v1/jobs/{id}", "POST /v1/jobs/{id}/cancel"} {
		suffix := ""
		if strings.HasSuffix(op, "/cancel") {
			suffix = "/cancel"
		}
		add(op, "/v1/jobs/"+mine()+suffix, "alice:erp", "", nil, 200)
		add(op, "/v1/jobs/"+held.ID+suffix, "", "", nil, 401)
		add(op, "/v1/jobs/"+held.ID+suffix, "alice:shop", "", nil, 403)
		add(op, "/v1/jobs/"+held.ID+suffix, "bob:erp", "", nil, 404)
		add(op, "/v1/jobs/"+out.ID+suffix, "alice:erp", "", nil, 409)
	}
	add("GET /v1/openapi.json", "/v1/openapi.json", "", "", nil, 200)
	// 429: the second request of a token on a service allowing one per window.
	for i, op := range documented {
		method, path, _ := strings.Cut(op, " ")
		path = strings.ReplaceAll(path, "{id}", held.ID)
		tok := fmt.Sprintf("rl%d:erp", i)
		if path == "/v1/openapi.json" {
			tok = ""
		}
		for _, want := range []int{0, 429} {
			cases = append(cases, tcase{lim, op, method, path, tok, "", nil, want})
		}
	}

	covered := map[string]bool{}
	for _, c := range cases {
		code, b, h := c.env.call(t, c.method, c.path, c.token, c.ct, c.body)
		if c.want != 0 && code != c.want {
			t.Errorf("%s %s: %d, want %d: %s", c.method, c.path, code, c.want, b)
			continue
		}
		if c.want == 0 {
			continue // a request spent only to reach the limit
		}
		status := fmt.Sprint(code)
		resp, ok := ops[c.op]["responses"].(map[string]any)[status].(map[string]any)
		if !ok {
			t.Errorf("%s %s answered %d, which the document does not declare", c.method, c.path, code)
			continue
		}
		resp, err := sc.ref(resp)
		if err != nil {
			t.Fatal(err)
		}
		covered[c.op+" "+status] = true
		ct, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
		media, ok := resp["content"].(map[string]any)[ct].(map[string]any)
		if !ok {
			t.Errorf("%s %s: %d with Content-Type %q, not declared", c.method, c.path, code, ct)
			continue
		}
		v, err := decodeNumbers(b)
		if err != nil {
			t.Errorf("%s %s: body %s: %v", c.method, c.path, b, err)
			continue
		}
		if err := sc.check("body", media["schema"].(map[string]any), v); err != nil {
			t.Errorf("%s %s (%d): %v\n%s", c.method, c.path, code, err, b)
		}
		for _, hk := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
			if h.Get(hk) == "" {
				t.Errorf("%s %s: no %s", c.method, c.path, hk)
			}
		}
	}
	for op, o := range ops {
		for status := range o["responses"].(map[string]any) {
			if status != "500" && !covered[op+" "+status] {
				t.Errorf("%s: declared status %s never exercised", op, status)
			}
		}
	}
}

// The callback body a receiver gets matches the document's webhook schema.
func TestOpenAPICallbackSchema(t *testing.T) {
	var doc map[string]any
	d := json.NewDecoder(bytes.NewReader(openAPIDoc))
	d.UseNumber()
	if err := d.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	j := Job{ID: "job_1", Title: "t", Layout: "name", User: "alice", DataFormat: "csv", Labels: 2, State: StatePrinted, Station: "st-1",
		Printed: 2, Created: t0, Updated: t0, Expires: t0.Add(time.Hour), App: "erp", Callback: "https://erp.example/hook", Data: []byte("x")}
	cb, _, err := callbackFor(&j, EventPrinted, t0)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := decodeNumbers(cb.Body)
	if err := (schemaChecker{doc}).check("callback", map[string]any{"$ref": "#/components/schemas/CallbackBody"}, v); err != nil {
		t.Fatalf("%v\n%s", err, cb.Body)
	}
}

// The checker refuses what the schemas rule out, so a passing check means something.
func TestSchemaCheckerRefuses(t *testing.T) {
	var doc map[string]any
	d := json.NewDecoder(bytes.NewReader(openAPIDoc))
	d.UseNumber()
	if err := d.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	sc := schemaChecker{doc}
	job := map[string]any{"$ref": "#/components/schemas/Job"}
	good := `{"id":"j","title":"t","format":"f","user":"u","data_format":"csv","labels":1,"state":"held","printed":0,"created":"2026-11-22T10:00:00Z","updated":"2026-11-22T10:00:00Z"}`
	for _, bad := range []string{
		strings.Replace(good, `"labels":1`, `"labels":1.5`, 1),
		strings.Replace(good, `"state":"held"`, `"state":"lost"`, 1),
		strings.Replace(good, `"id":"j",`, ``, 1),
		strings.Replace(good, `"created":"2026-11-22T10:00:00Z"`, `"created":"yesterday"`, 1),
		strings.Replace(good, `{`, `{"secret":1,`, 1),
		`[]`,
	} {
		v, _ := decodeNumbers([]byte(bad))
		if err := sc.check("job", job, v); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
	v, _ := decodeNumbers([]byte(good))
	if err := sc.check("job", job, v); err != nil {
		t.Fatal(err)
	}
}
