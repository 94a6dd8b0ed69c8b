package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// minimal is the smallest valid local document: the required fields only.
const minimal = `{
  "v": 1,
  "station": {"state_dir": "state"},
  "cloud": {"issuer": "http://127.0.0.1:8780", "broker": "mqtt://127.0.0.1:18830"},
  "printer": {"url": "tcp://127.0.0.1:9100"}
}`

// with returns minimal with one section replaced or added, so each bad case differs from a
// known good document in exactly one place.
func with(t *testing.T, section, value string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(minimal), &m); err != nil {
		t.Fatal(err)
	}
	m[section] = json.RawMessage(value)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseDefaults(t *testing.T) {
	c, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	want := Defaults()
	want.Station.StateDir = "state"
	want.Cloud.Issuer = "http://127.0.0.1:8780"
	want.Cloud.Broker = "mqtt://127.0.0.1:18830"
	want.Printer.URL = "tcp://127.0.0.1:9100"
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("Parse(minimal) =\n%+v\nwant\n%+v", c, want)
	}
	// Spot-check the documented defaults, so a change to Defaults() must be deliberate.
	if c.Cloud.ClientID != "station" || !reflect.DeepEqual(c.Cloud.Scopes, []string{"openid", "offline_access", "printing"}) || c.Cloud.StationClaim != "sub" ||
		c.Board.Kind != "sim" || c.Printer.Lang != "zpl" || c.Printer.DPI != 203 ||
		c.Display.Kind != "sim" || c.Display.Width != 128 || c.Display.Height != 64 || c.Display.Contrast != 255 ||
		c.Badge.Reader != "sim" || c.Badge.Encoding != "hex" || c.Badge.ByteOrder != "msb" || c.Badge.RepeatMS != 2000 ||
		c.Release.Mode != "all" || c.Release.ScreenSeconds != 5 {
		t.Fatalf("defaults drifted from docs/configuration.md: %+v", c)
	}
}

func TestParseGood(t *testing.T) {
	for _, tc := range []struct {
		name, section, value string
		check                func(Config) bool
	}{
		{"zero contrast is kept, not defaulted", "display", `{"contrast": 0}`,
			func(c Config) bool { return c.Display.Contrast == 0 && c.Display.Width == 128 }},
		{"scopes replace the default", "cloud", `{"issuer": "https://id.example", "broker": "mqtts://b.example:8883", "scopes": ["printing"]}`,
			func(c Config) bool { return reflect.DeepEqual(c.Cloud.Scopes, []string{"printing"}) }},
		{"station claim and audience", "cloud", `{"issuer": "https://id.example", "broker": "mqtts://b.example:8883", "station_claim": "tp_id", "audience": "https://print.example"}`,
			func(c Config) bool {
				return c.Cloud.StationClaim == "tp_id" && c.Cloud.Audience == "https://print.example"
			}},
		{"usb printer", "printer", `{"url": "usb:///dev/usb/lp0", "lang": "tspl", "dpi": 300, "raster": true}`,
			func(c Config) bool {
				e, err := c.Printer.Endpoint()
				return err == nil && e == Endpoint{Scheme: "usb", Address: "/dev/usb/lp0"} && c.Printer.Raster
			}},
		{"serial printer with baud", "printer", `{"url": "serial:///dev/ttyUSB0?baud=115200", "lang": "escpos"}`,
			func(c Config) bool {
				e, err := c.Printer.Endpoint()
				return err == nil && e == Endpoint{Scheme: "serial", Address: "/dev/ttyUSB0", Baud: 115200}
			}},
		{"sim board serial", "board", `{"kind": "sim", "serial": "10000000abcdef01"}`,
			func(c Config) bool { return c.Board.Serial == "10000000abcdef01" }},
		{"hash key", "badge", `{"reader": "pn532-i2c", "device": "/dev/i2c-1", "hash_key": "000102030405060708090a0b0c0d0e0f", "bits": 32, "repeat_ms": 0}`,
			func(c Config) bool {
				return len(c.Badge.Key()) == 16 && c.Badge.Bits == 32 && c.Badge.Repeat() == 0
			}},
		{"release", "release", `{"mode": "confirm", "screen_seconds": 10}`,
			func(c Config) bool { return c.Release.Mode == "confirm" && c.Release.ScreenTime() == 10*time.Second }},
		{"release select", "release", `{"mode": "select", "order": "newest", "select_seconds": 20, "preview": true, "offline_seconds": 3600}`,
			func(c Config) bool {
				r := c.Release
				return r.Mode == "select" && r.Order == "newest" && r.SelectTime() == 20*time.Second && r.Preview && r.OfflineTime() == time.Hour
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(with(t, tc.section, tc.value))
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Fatalf("unexpected config %+v", c)
			}
		})
	}
}

func TestParseBad(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  []byte
		kind error
		want string
	}{
		{"unknown field", with(t, "printer", `{"url": "tcp://h:9100", "dpii": 300}`), ErrUnknownField,
			"config: printer.dpii: unknown field"},
		{"unknown section", with(t, "printr", `{}`), ErrUnknownField, "config: printr: unknown field"},
		{"case matters", with(t, "printer", `{"URL": "tcp://h:9100"}`), ErrUnknownField, "config: printer.URL: unknown field"},
		{"dpi not allowed", with(t, "printer", `{"url": "tcp://h:9100", "dpi": 250}`), ErrInvalid,
			"config: printer.dpi: 250 is not one of 203, 300, 600"},
		{"dpi wrong type", with(t, "printer", `{"url": "tcp://h:9100", "dpi": "300"}`), ErrInvalid,
			`config: printer.dpi: want an integer, got string "300"`},
		{"dpi fraction", with(t, "printer", `{"url": "tcp://h:9100", "dpi": 203.5}`), ErrInvalid,
			"config: printer.dpi: want an integer, got 203.5"},
		{"null", with(t, "display", `{"width": null}`), ErrInvalid, "config: display.width: want an integer, got null"},
		{"section not an object", with(t, "badge", `"sim"`), ErrInvalid, `config: badge: want an object, got string "sim"`},
		{"scope wrong type", with(t, "cloud", `{"issuer": "https://i", "broker": "mqtts://b", "scopes": ["printing", 7]}`), ErrInvalid,
			"config: cloud.scopes[1]: want a string, got number 7"},
		{"scope not a token", with(t, "cloud", `{"issuer": "https://i", "broker": "mqtts://b", "scopes": ["a b"]}`), ErrInvalid,
			`config: cloud.scopes[0]: "a b" is not a valid scope (RFC 6749 §3.3)`},
		{"empty station claim", with(t, "cloud", `{"issuer": "https://i", "broker": "mqtts://b", "station_claim": ""}`), ErrInvalid,
			`config: cloud.station_claim: "" is not a claim name (e.g. sub, tp_id, station_id)`},
		{"empty scopes", with(t, "cloud", `{"issuer": "https://i", "broker": "mqtts://b", "scopes": []}`), ErrInvalid,
			"config: cloud.scopes: must not be empty"},
		{"duplicate key", []byte(`{"v": 1, "v": 1}`), ErrInvalid, "config: v: duplicate field"},
		{"missing version", []byte(`{"printer": {"dpii": 1}}`), ErrVersion, "config: v: missing (want 1)"},
		{"newer version wins over unknown fields", []byte(`{"v": 2, "printer": {"dpii": 1}}`), ErrVersion,
			"config: v: 2 is not supported (want 1)"},
		{"version as string", []byte(`{"v": "1"}`), ErrVersion, `config: v: "1" is not supported (want 1)`},
		{"trailing data", append([]byte(minimal), " {}"...), ErrSyntax, "config: trailing data after the document at line 6, column 3"},
		{"syntax error", []byte("{\"v\": 1,\n \"station\": {,}}"), ErrSyntax,
			"config: syntax error at line 2, column 14: invalid character ','"},
		{"truncated", []byte(minimal[:40]), ErrSyntax, "config: unexpected end of document"},
		{"empty", nil, ErrSyntax, "config: unexpected end of document"},
		{"not an object", []byte(`[1]`), ErrInvalid, "config: want an object, got a list"},
		{"bool wrong type", with(t, "printer", `{"url": "tcp://h:9100", "raster": 1}`), ErrInvalid,
			"config: printer.raster: want true or false, got number 1"},
		{"list wrong type", with(t, "cloud", `{"issuer": "https://i", "broker": "mqtts://b", "scopes": "printing"}`), ErrInvalid,
			`config: cloud.scopes: want a list of strings, got string "printing"`},
		{"string wrong type", with(t, "station", `{"state_dir": ["s"]}`), ErrInvalid,
			"config: station.state_dir: want a string, got a list"},
		{"printer port", with(t, "printer", `{"url": "tcp://h:70000"}`), ErrInvalid,
			`config: printer.url: "tcp://h:70000": port "70000" is not in 1-65535`},
		{"printer baud", with(t, "printer", `{"url": "serial:///dev/ttyS0?baud=fast"}`), ErrInvalid,
			`config: printer.url: "serial:///dev/ttyS0?baud=fast": baud "fast" is not a positive integer`},
		{"state dir required", with(t, "station", `{}`), ErrInvalid, "config: station.state_dir: required"},
		{"issuer scheme", with(t, "cloud", `{"issuer": "ftp://i", "broker": "mqtt://b"}`), ErrInvalid,
			`config: cloud.issuer: scheme "ftp" is not one of http, https`},
		{"broker host", with(t, "cloud", `{"issuer": "http://i", "broker": "mqtt:///x"}`), ErrInvalid,
			`config: cloud.broker: "mqtt:///x" has no host`},
		{"cleartext issuer", with(t, "cloud", `{"issuer": "http://cloud.example", "broker": "mqtts://b"}`), ErrInvalid,
			`config: cloud.issuer: "http://cloud.example": cleartext to a non-loopback host; use https:// or mqtts://, or set cloud.allow_insecure`},
		{"cleartext broker", with(t, "cloud", `{"issuer": "https://i", "broker": "mqtt://10.0.0.5:1883"}`), ErrInvalid,
			`config: cloud.broker: "mqtt://10.0.0.5:1883": cleartext to a non-loopback host; use https:// or mqtts://, or set cloud.allow_insecure`},
		{"cleartext keys", with(t, "cloud", `{"issuer": "https://i", "broker": "mqtts://b", "keys_url": "http://keys.example/jwks"}`), ErrInvalid,
			`config: cloud.keys_url: "http://keys.example/jwks": cleartext to a non-loopback host; use https:// or mqtts://, or set cloud.allow_insecure`},
		{"keys scheme", with(t, "cloud", `{"issuer": "https://i", "broker": "mqtts://b", "keys_url": "file:///k"}`), ErrInvalid,
			`config: cloud.keys_url: scheme "file" is not one of http, https`},
		{"allow_insecure type", with(t, "cloud", `{"issuer": "https://i", "broker": "mqtts://b", "allow_insecure": "yes"}`), ErrInvalid,
			`config: cloud.allow_insecure: want true or false, got string "yes"`},
		{"board kind", with(t, "board", `{"kind": "pi"}`), ErrInvalid,
			`config: board.kind: "pi" is not one of "sim", "rpi", "fakepi"`},
		{"serial on a real board", with(t, "board", `{"kind": "rpi", "serial": "x"}`), ErrInvalid,
			`config: board.serial: only allowed with board.kind "sim" (real boards report their own)`},
		{"printer url required", with(t, "printer", `{}`), ErrInvalid, "config: printer.url: required"},
		{"printer tcp without port", with(t, "printer", `{"url": "tcp://h"}`), ErrInvalid,
			`config: printer.url: "tcp://h": want tcp://host:port`},
		{"printer usb with host", with(t, "printer", `{"url": "usb://dev/usb/lp0"}`), ErrInvalid,
			`config: printer.url: "usb://dev/usb/lp0": want usb:///dev/...`},
		{"printer serial parameter", with(t, "printer", `{"url": "serial:///dev/ttyS0?parity=n"}`), ErrInvalid,
			`config: printer.url: "serial:///dev/ttyS0?parity=n": unknown parameter "parity"`},
		{"printer scheme", with(t, "printer", `{"url": "lpd://h/q"}`), ErrInvalid,
			`config: printer.url: scheme "lpd" is not one of tcp, usb, serial`},
		{"printer lang", with(t, "printer", `{"url": "tcp://h:9100", "lang": "epl"}`), ErrInvalid,
			`config: printer.lang: "epl" is not one of "zpl", "tspl", "escpos"`},
		{"display rotate", with(t, "display", `{"rotate": 45}`), ErrInvalid, "config: display.rotate: 45 is not one of 0, 90, 180, 270"},
		{"display bus", with(t, "display", `{"kind": "ssd1306", "bus": "usb"}`), ErrInvalid, `config: display.bus: "usb" is not one of "i2c", "spi"`},
		{"e-paper model", with(t, "display", `{"kind": "epaper", "model": "2in9"}`), ErrInvalid, `config: display.model: "2in9" is not one of "2in13v2", "2in13v3", "2in13v4"`},
		{"dim seconds", with(t, "display", `{"dim_seconds": -1}`), ErrInvalid, "config: display.dim_seconds: -1 is not in 0-86400"},
		{"display contrast", with(t, "display", `{"contrast": 256}`), ErrInvalid, "config: display.contrast: 256 is not in 0-255"},
		{"display width", with(t, "display", `{"width": 0}`), ErrInvalid, "config: display.width: 0 is not in 1-4096"},
		{"badge reader", with(t, "badge", `{"reader": "pn533"}`), ErrInvalid,
			`config: badge.reader: "pn533" is not one of "sim", "pn532-i2c", "pn532-spi", "pn532-uart", "mfrc522", "rdm6300", "wedge"`},
		{"badge bits", with(t, "badge", `{"bits": -1}`), ErrInvalid, "config: badge.bits: -1 is not in 0-80"},
		{"badge key not hex", with(t, "badge", `{"hash_key": "zz"}`), ErrInvalid, "config: badge.hash_key: not hex"},
		{"badge key short", with(t, "badge", `{"hash_key": "00112233"}`), ErrInvalid, "config: badge.hash_key: 4 bytes, want at least 16"},
		{"release mode", with(t, "release", `{"mode": "some"}`), ErrInvalid, `config: release.mode: "some" is not one of "all", "confirm", "select"`},
		{"release order", with(t, "release", `{"mode": "select", "order": "random"}`), ErrInvalid, `config: release.order: "random" is not one of "oldest", "newest"`},
		{"select seconds", with(t, "release", `{"select_seconds": 1}`), ErrInvalid, "config: release.select_seconds: 1 is not in 5-300"},
		{"offline seconds", with(t, "release", `{"offline_seconds": -1}`), ErrInvalid, "config: release.offline_seconds: -1 is not in 0-604800"},
		{"screen seconds", with(t, "release", `{"screen_seconds": 0}`), ErrInvalid, "config: release.screen_seconds: 0 is not in 1-300"},
		{"zpl prefix saves settings", with(t, "printer", `{"url": "tcp://h:9100", "zpl_prefix": "^MD10^JUS"}`), ErrInvalid,
			"config: printer.zpl_prefix: ^JU at offset 5 is not one of ^MD, ^PR, ^MN, ^MT, ^LH, ^LT, ^LS, ^PW, ^LL, ^PO"},
		{"zpl prefix ends the label", with(t, "printer", `{"url": "tcp://h:9100", "zpl_prefix": "^XZ"}`), ErrInvalid,
			"config: printer.zpl_prefix: ^XZ at offset 0 is not one of ^MD, ^PR, ^MN, ^MT, ^LH, ^LT, ^LS, ^PW, ^LL, ^PO"},
		{"zpl prefix tilde command", with(t, "printer", `{"url": "tcp://h:9100", "zpl_prefix": "^MD5~JR"}`), ErrInvalid,
			`config: printer.zpl_prefix: '~' at offset 4 is not a parameter of ^MD`},
		{"zpl prefix not a command", with(t, "printer", `{"url": "tcp://h:9100", "zpl_prefix": "MD10"}`), ErrInvalid,
			`config: printer.zpl_prefix: "MD10" does not start with a ^ command`},
		{"font dir control", with(t, "printer", `{"url": "tcp://h:9100", "font_dir": "/usr/share/fonts\n"}`), ErrInvalid,
			`config: printer.font_dir: "/usr/share/fonts\n" contains a control character`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.doc)
			if err == nil {
				t.Fatalf("Parse(%s) succeeded", tc.doc)
			}
			if err.Error() != tc.want {
				t.Errorf("error\n got %q\nwant %q", err, tc.want)
			}
			if !errors.Is(err, tc.kind) {
				t.Errorf("error %v does not wrap %v", err, tc.kind)
			}
		})
	}
}

func TestErrorPath(t *testing.T) {
	_, err := Parse(with(t, "badge", `{"encoding": "oct"}`))
	var ce *Error
	if !errors.As(err, &ce) || ce.Path != "badge.encoding" {
		t.Fatalf("error %v: want *Error with Path badge.encoding", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(good, []byte(minimal), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, with(t, "printer", `{"url": "tcp://h:9100", "dpii": 300}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(good); err != nil {
		t.Fatal(err)
	}
	_, err := Load(bad)
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.HasSuffix(err.Error(), "printer.dpii: unknown field") ||
		!errors.Is(err, ErrUnknownField) {
		t.Fatalf("Load(bad) = %v", err)
	}
	_, err = Load(filepath.Join(dir, "missing.json"))
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "missing.json") {
		t.Fatalf("Load(missing) = %v", err)
	}
}

// TestExample keeps examples/stationd.json loadable.
func TestExample(t *testing.T) {
	c, err := Load(filepath.Join("..", "..", "examples", "stationd.json"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Board.Kind != "sim" || c.Display.Kind != "sim" || c.Display.Width != 128 || c.Display.Height != 64 ||
		c.Printer.URL != "tcp://127.0.0.1:9100" || c.Cloud.Issuer != "http://127.0.0.1:8780" ||
		c.Cloud.Broker != "mqtt://127.0.0.1:18830" {
		t.Fatalf("example config drifted: %+v", c)
	}
}

// TestRoundTrip: a Config marshalled with encoding/json parses back to itself, so the json tags
// and the strict decoder agree on every field name.
func TestRoundTrip(t *testing.T) {
	c, err := Parse(with(t, "badge", `{"reader": "wedge", "device": "/dev/input/event3", "encoding": "dec", "byte_order": "lsb", "bits": 24, "repeat_ms": 1500, "hash_key": "000102030405060708090a0b0c0d0e0f"}`))
	if err != nil {
		t.Fatal(err)
	}
	c.Station.Name = "front desk"
	c.Printer.Raster = true
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, c) {
		t.Fatalf("round trip\n got %+v\nwant %+v", back, c)
	}
}

// FuzzParse: Parse never panics, every refusal wraps a sentinel and carries the package prefix,
// and every accepted document survives a marshal/parse round trip unchanged.
func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte(`{"v": 1, "printer": {"dpi": 300}}`))
	f.Add([]byte(`{"v": 1, "cloud": {"scopes": ["a", 1]}}`))
	f.Add([]byte(`{"v":1,"station":{"state_dir":"s"},"cloud":{"issuer":"https://i","broker":"mqtts://b"},"printer":{"url":"serial:///dev/ttyS0?baud=9600"}} `))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "config: ") {
				t.Fatalf("error without prefix: %v", err)
			}
			if !errors.Is(err, ErrVersion) && !errors.Is(err, ErrUnknownField) && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrSyntax) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(b)
		if err != nil || !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip of %s: %+v, %v", b, back, err)
		}
	})
}

func TestBoardWiring(t *testing.T) {
	base := `{"v":1,"station":{"state_dir":"s"},"cloud":{"issuer":"https://a","broker":"mqtts://b"},"printer":{"url":"tcp://p:9100"},`
	c, err := Parse([]byte(base + `"board":{"kind":"rpi","inputs":{"ok":{"pin":"GPIO16","debounce_ms":50}},"i2c":{"main":"1"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	bc := c.Board.BoardConfig()
	if bc.Inputs["ok"].Pin != "GPIO16" || bc.Inputs["ok"].DebounceMs != 50 || bc.Outputs["led"].Pin == "" {
		t.Fatalf("board config = %+v (the given input, and the default outputs)", bc)
	}
	if c.Board.BoardConfig().LongPress() != 800*time.Millisecond {
		t.Fatalf("default long press %v", c.Board.BoardConfig().LongPress())
	}
	c, err = Parse([]byte(base + `"board":{"kind":"sim","long_press_ms":1200}}`))
	if err != nil || c.Board.BoardConfig().LongPress() != 1200*time.Millisecond {
		t.Fatalf("board.long_press_ms 1200: %v, %v", c.Board.BoardConfig().LongPress(), err)
	}
	for _, tt := range []struct{ doc, want string }{
		{`"board":{"kind":"rpi","inputs":{"ok":{"pin":"GPIO16","activ":"low"}}}}`, "config: board.inputs.ok.activ: unknown field"},
		{`"board":{"kind":"rpi","inputs":{"ok":{"pin":""}}}}`, "config: board.inputs.ok.pin is empty"},
		{`"board":{"kind":"rpi","inputs":{"ok":{"pin":"GPIO5","active":"sideways"}}}}`, "board.inputs.ok.active"},
		{`"board":{"kind":"rpi","i2c":{"main":1}}}`, "config: board.i2c.main: want a string, got number 1"},
		{`"board":{"kind":"rpi","i2c":{"main":"1","main":"2"}}}`, "config: board.i2c.main: duplicate field"},
		{`"board":{"kind":"rpi","inputs":[]}}`, "config: board.inputs: want an object, got a list"},
		{`"board":{"kind":"sim","long_press_ms":-5}}`, "config: board.long_press_ms -5: want 0 (default 800) to 10000"},
		{`"board":{"kind":"rpi","long_press_ms":20}}`, "config: board.long_press_ms 20: must be longer than board.inputs.cancel's debounce (30 ms)"},
		{`"board":{"kind":"rpi","long_press_ms":"1s"}}`, "config: board.long_press_ms: want an integer"},
	} {
		_, err := Parse([]byte(base + tt.doc))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%s) = %v, want %q", tt.doc, err, tt.want)
		}
	}
}

// Cleartext is fine to loopback (make run) and, with cloud.allow_insecure, to a lab LAN.
func TestCleartextAllowed(t *testing.T) {
	for _, cloud := range []string{
		`{"issuer": "http://127.0.0.1:8780", "broker": "mqtt://127.0.0.1:18830"}`,
		`{"issuer": "http://localhost:8780", "broker": "tcp://[::1]:1883"}`,
		`{"issuer": "http://lab.example", "broker": "mqtt://10.0.0.5:1883", "keys_url": "http://lab.example/keys", "allow_insecure": true, "ca_file": "/etc/ca.pem"}`,
	} {
		c, err := Parse(with(t, "cloud", cloud))
		if err != nil {
			t.Errorf("%s: %v", cloud, err)
			continue
		}
		if strings.Contains(cloud, "allow_insecure") && (!c.Cloud.AllowInsecure || c.Cloud.CAFile != "/etc/ca.pem" || c.Cloud.KeysURL != "http://lab.example/keys") {
			t.Errorf("fields not read: %+v", c.Cloud)
		}
	}
}

// A prefix of setup commands is accepted in any case and kept as written.
func TestZPLPrefixGood(t *testing.T) {
	for _, p := range []string{"^MD10", "^md-5^PR4,4,4^MNY^LH10,20", "^MTD^PW812^LL1218^POI^LT-10^LS0"} {
		c, err := Parse(with(t, "printer", `{"url": "tcp://h:9100", "zpl_prefix": "`+p+`"}`))
		if err != nil || c.Printer.ZPLPrefix != p {
			t.Errorf("%s: %v, %q", p, err, c.Printer.ZPLPrefix)
		}
	}
}
