package seed

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestLoadExample(t *testing.T) {
	s, err := Load(filepath.Join("..", "..", "examples", "devcloud-seed.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Layouts["shipping"]; !ok {
		t.Fatalf("layouts = %v", s.Layouts)
	}
	if u, err := s.UserByID("alice"); err != nil || len(u.Badges) == 0 {
		t.Fatalf("alice: %+v %v", u, err)
	}
}

func TestLoadRejects(t *testing.T) {
	layout, err := os.ReadFile(filepath.Join("..", "..", "examples", "layouts", "shipping.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, doc, want string }{
		{"version", `{"v":2}`, "v: want 1"},
		{"unknown field", `{"v":1,"userz":[]}`, "unknown field"},
		{"bad user id", `{"v":1,"users":[{"id":"a b"}]}`, "users[0].id"},
		{"duplicate user", `{"v":1,"users":[{"id":"a"},{"id":"a"}]}`, "users[1].id: duplicate"},
		{"shared badge", `{"v":1,"users":[{"id":"a","badges":["01"]},{"id":"b","badges":["01"]}]}`, "users[1].badges[0]"},
		{"app of nobody", `{"v":1,"apps":[{"client_id":"x","user":"ghost"}]}`, "apps[0].user"},
		{"missing layout file", `{"v":1,"layouts":["nope.json"]}`, "layouts[0]"},
		{"duplicate layout", `{"v":1,"layouts":["l.json","l.json"]}`, "layouts[1]: duplicate"},
		{"trailing data", `{"v":1} {}`, "trailing data"},
		{"plain password as hash", `{"v":1,"users":[{"id":"a","password_hash":"hunter2"}]}`, "users[0].password_hash: want a bcrypt hash"},
		{"plain password field", `{"v":1,"users":[{"id":"a","password":"hunter2"}]}`, "unknown field"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "l.json"), layout, 0o600)
			p := filepath.Join(dir, "seed.json")
			os.WriteFile(p, []byte(tt.doc), 0o600)
			_, err := Load(p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestLoadPasswordHash(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "seed.json")
	os.WriteFile(p, []byte(`{"v":1,"users":[{"id":"a","password_hash":"`+string(h)+`"}]}`), 0o600)
	s, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if s.Users[0].PasswordHash != string(h) || s.Users[0].Password != "" {
		t.Fatalf("user = %+v", s.Users[0])
	}
}
