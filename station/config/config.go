// Package config loads the station's configuration: the local file written at install time and
// the fleet part pushed over MQTT (protocol.ConfigDesired). Both go through one strict decoder:
// the document must carry "v", unknown fields, duplicate keys, type errors and trailing data are
// rejected, and every error names the offending field's path (e.g. "printer.dpi"), so a
// fleet manager reading config/reported sees exactly what a station refused.
//
// docs/configuration.md lists every field, its default and its allowed values.
package config

import (
	"labelstation/station/trust"

	"labelstation/board"

	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Version is the only document version this package reads; it is the "v" field.
const Version = 1

// Sentinel errors; every error this package returns for a bad document wraps one of them.
var (
	ErrVersion      = errors.New("config: unsupported version")
	ErrUnknownField = errors.New("config: unknown field")
	ErrInvalid      = errors.New("config: invalid value")
	ErrSyntax       = errors.New("config: malformed JSON")
)

// Error is a problem with one field of a document. Path is the field's path ("printer.dpi",
// "cloud.scopes[1]"), empty for document-level problems such as trailing data.
type Error struct {
	Path string
	Msg  string
	Kind error // ErrVersion, ErrUnknownField, ErrInvalid or ErrSyntax
}

func (e *Error) Error() string {
	if e.Path == "" {
		return "config: " + e.Msg
	}
	return "config: " + e.Path + ": " + e.Msg
}

func (e *Error) Unwrap() error { return e.Kind }

var _ error = (*Error)(nil)

// Config is the whole local configuration of a station.
type Config struct {
	V       int     `json:"v"`
	Station Station `json:"station"`
	Cloud   Cloud   `json:"cloud"`
	Board   Board   `json:"board"`
	Printer Printer `json:"printer"`
	Display Display `json:"display"`
	Badge   Badge   `json:"badge"`
	Release Release `json:"release"`
	Journal Journal `json:"journal"`
	Log     Log     `json:"log"`
	// Telemetry is how often the station sends a health report (fleet-settable).
	Telemetry Telemetry `json:"telemetry"`
}

// Telemetry sets the health report's period.
type Telemetry struct {
	IntervalS int `json:"interval_s"` // seconds between reports; default 60
}

// Interval is IntervalS as a duration.
func (t Telemetry) Interval() time.Duration { return time.Duration(t.IntervalS) * time.Second }

// Journal bounds the job journal on the station's storage.
type Journal struct {
	KeepDays int `json:"keep_days"` // finished jobs are pruned to tombstones after this many days; default 7
	MaxMB    int `json:"max_mb"`    // jobs that would grow the journal beyond this are refused; default 256
}

// Keep is KeepDays as a duration.
func (j Journal) Keep() time.Duration { return time.Duration(j.KeepDays) * 24 * time.Hour }

// Station is the station's local identity and storage.
type Station struct {
	Name     string `json:"name"`      // shown on the idle screen; optional
	StateDir string `json:"state_dir"` // tokens, journal, last fleet config; required
}

// Cloud says where the station enrolls (RFC 8628 issuer) and which broker it talks to.
type Cloud struct {
	Issuer   string   `json:"issuer"`    // http(s) URL of the authorization server
	Broker   string   `json:"broker"`    // mqtt://, tcp:// or mqtts:// URL
	ClientID string   `json:"client_id"` // OAuth public client id; default "station"
	Scopes   []string `json:"scopes"`    // default ["openid", "offline_access", "printing"]
	// StationClaim names the token claim that is the station id: "sub" (any OpenID server),
	// "tp_id", devcloud's "station_id". Default "sub".
	StationClaim string `json:"station_claim"`
	// Audience, if set, is sent as the `audience` parameter of the device request (Auth0 issues a
	// JWT access token for that API only when asked).
	Audience string `json:"audience"`
	// AllowInsecure permits http:// and mqtt:// to a host that is not loopback (a lab LAN).
	// The station warns about it at every start.
	AllowInsecure bool `json:"allow_insecure"`
	// CAFile is a PEM file of a private CA trusted for the issuer, the keys and the broker.
	CAFile string `json:"ca_file"`
	// KeysURL is the JWKS of the cloud's message-signing keys, for a cloud whose IdP is not the
	// one that publishes them; empty means the issuer metadata's jwks_uri.
	KeysURL string `json:"keys_url"`
}

// Board selects the hardware abstraction and names its pins and buses (docs/wiring.md has the
// defaults of each board).
type Board struct {
	Kind    string                     `json:"kind"`              // sim, rpi, fakepi; default sim
	Serial  string                     `json:"serial"`            // sim only: the serial number the sim board reports
	Inputs  map[string]board.PinConfig `json:"inputs,omitempty"`  // button name → pin
	Outputs map[string]board.PinConfig `json:"outputs,omitempty"` // LED/buzzer name → pin
	I2C     map[string]string          `json:"i2c,omitempty"`     // bus name → periph I²C bus
	SPI     map[string]string          `json:"spi,omitempty"`     // port name → periph SPI port
	GPIO    map[string]string          `json:"gpio,omitempty"`    // driver line name → periph pin
	// LongPressMs: a button held this long is a long press ("back" on the job list); 0 means
	// 800. Also the threshold of the sim panel's web buttons.
	LongPressMs int `json:"long_press_ms,omitempty"`
}

// BoardConfig is the board package's view of the section, with the board's defaults applied.
func (b Board) BoardConfig() board.Config {
	return board.Config{Kind: b.Kind, Serial: b.Serial, Inputs: b.Inputs, Outputs: b.Outputs, I2C: b.I2C, SPI: b.SPI, GPIO: b.GPIO, LongPressMs: b.LongPressMs}.WithDefaults()
}

// Printer is the label printer's connection and language.
type Printer struct {
	URL    string `json:"url"`    // tcp://host:port, usb:///dev/usb/lp0, serial:///dev/ttyUSB0?baud=9600
	Lang   string `json:"lang"`   // zpl, tspl, escpos; default zpl
	DPI    int    `json:"dpi"`    // 203, 300, 600; default 203
	Raster bool   `json:"raster"` // send a 1-bit raster instead of native commands
	// PairingLabel prints the pairing code, QR and instructions for the first code of an
	// enrollment attempt (at boot, or a button press on the denied screen); later codes that
	// replace an expired one are only shown.
	PairingLabel bool `json:"pairing_label"`
	// FontDir holds TTF/OTF fonts for characters the built-in Go fonts lack (CJK, Arabic…);
	// without one, a job with such a character is refused before anything prints.
	FontDir string `json:"font_dir"`
	// ZPLPrefix is ZPL setup (darkness, speed, media tracking, label home) put at the start of
	// every label of a ready-made ZPL document, so the station's media settings apply to
	// carrier labels too; empty sends documents byte for byte.
	ZPLPrefix string `json:"zpl_prefix"`
}

// Display is the panel showing the station's screens.
type Display struct {
	Kind     string `json:"kind"`     // sim, ssd1306, epaper, fb, none; default sim
	Width    int    `json:"width"`    // pixels; default 128
	Height   int    `json:"height"`   // pixels; default 64
	Rotate   int    `json:"rotate"`   // 0, 90, 180, 270 degrees
	Contrast int    `json:"contrast"` // 0-255; default 255
	Bus      string `json:"bus"`      // ssd1306: i2c or spi; default i2c
	Model    string `json:"model"`    // epaper: 2in13v2, 2in13v3 or 2in13v4; default 2in13v4
	// OLED care: dim after this many idle seconds, blank after this many (0 never); a tap or a
	// button wakes the panel. Defaults 60 and 600.
	DimSeconds   int `json:"dim_seconds"`
	BlankSeconds int `json:"blank_seconds"`
}

// Badge is the badge reader and how a card's UID becomes a card number.
type Badge struct {
	Reader    string `json:"reader"`     // sim, pn532-i2c, pn532-spi, pn532-uart, mfrc522, rdm6300, wedge; default sim
	Device    string `json:"device"`     // bus or device path; empty means the driver's default
	Encoding  string `json:"encoding"`   // hex or dec; default hex
	ByteOrder string `json:"byte_order"` // msb or lsb; default msb
	Bits      int    `json:"bits"`       // keep the low N bits of the UID; 0 keeps all
	RepeatMS  int    `json:"repeat_ms"`  // ignore the same card again within this many ms; default 2000
	HashKey   string `json:"hash_key"`   // hex HMAC key for protocol.BadgeHash, >= 16 bytes; optional
}

// Release controls how held jobs are released after a tap.
type Release struct {
	Mode          string `json:"mode"`           // all (print everything at once), confirm, or select (choose one job with the buttons); default all
	ScreenSeconds int    `json:"screen_seconds"` // how long result screens stay; default 5
	// Order is the list's order in select mode: oldest or newest first; default oldest.
	Order string `json:"order"`
	// SelectSeconds is how long the job list and the preview wait for a button before
	// returning to idle without printing; default 30.
	SelectSeconds int `json:"select_seconds"`
	// Preview shows the chosen job's first label before it prints (select mode).
	Preview bool `json:"preview"`
	// OfflineSeconds is how long a badge the cloud recognised may release, while the cloud is
	// unreachable, the jobs already on the station for its owner; 0 turns offline release off.
	OfflineSeconds int `json:"offline_seconds"`
}

// Log is how much the daemon logs.
type Log struct {
	Level string `json:"level"` // debug, info, warn, error; default info
}

// Allowed values, in the order error messages list them.
var (
	boardKinds   = []string{"sim", "rpi", "fakepi"}
	printerLangs = []string{"zpl", "tspl", "escpos"}
	printerDPIs  = []int{203, 300, 600}
	displayKinds = []string{"sim", "ssd1306", "epaper", "fb", "none"}
	displayBuses = []string{"i2c", "spi"}
	epaperModels = []string{"2in13v2", "2in13v3", "2in13v4"}
	rotations    = []int{0, 90, 180, 270}
	badgeReaders = []string{"sim", "pn532-i2c", "pn532-spi", "pn532-uart", "mfrc522", "rdm6300", "wedge"}
	encodings    = []string{"hex", "dec"}
	byteOrders   = []string{"msb", "lsb"}
	releaseModes = []string{"all", "confirm", "select"}
	releaseOrder = []string{"oldest", "newest"}
	logLevels    = []string{"debug", "info", "warn", "error"}
)

// Limits that keep a typo from becoming a nonsense value.
const (
	maxPanel         = 4096  // pixels per side
	maxBits          = 80    // a 10-byte (ISO 14443 triple-size) UID
	maxRepeatMS      = 60000 // one minute
	maxScreenSeconds = 300
	maxOffline       = 7 * 24 * 3600 // a week: a badge seen last week may still release what is here
	minHashKey       = 16            // bytes; HMAC-SHA256 keys shorter than this are easy to brute force (RFC 2104 §3)
)

// Defaults returns a Config with every default applied; the required fields (station.state_dir,
// cloud.issuer, cloud.broker, printer.url) are empty.
func Defaults() Config {
	return Config{
		V:         Version,
		Cloud:     Cloud{ClientID: "station", Scopes: []string{"openid", "offline_access", "printing"}, StationClaim: "sub"},
		Board:     Board{Kind: "sim"},
		Printer:   Printer{Lang: "zpl", DPI: 203},
		Display:   Display{Kind: "sim", Width: 128, Height: 64, Contrast: 255, Bus: "i2c", Model: "2in13v4", DimSeconds: 60, BlankSeconds: 600},
		Badge:     Badge{Reader: "sim", Encoding: "hex", ByteOrder: "msb", RepeatMS: 2000},
		Release:   Release{Mode: "all", ScreenSeconds: 5, Order: "oldest", SelectSeconds: 30},
		Journal:   Journal{KeepDays: 7, MaxMB: 256},
		Log:       Log{Level: "info"},
		Telemetry: Telemetry{IntervalS: 60},
	}
}

// Parse decodes a local config document strictly, applies defaults to absent fields and
// validates the result. A field present in the document always wins over its default, so
// "contrast": 0 means 0.
func Parse(data []byte) (Config, error) {
	if err := checkVersion(data); err != nil {
		return Config{}, err
	}
	c := Defaults()
	if err := decodeStrict(data, &c); err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Load reads and parses the config file at path; errors name the file.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// checkVersion looks at "v" before anything else, so a document of a newer version is refused
// as such and not for the new fields it probably has.
func checkVersion(data []byte) error {
	var head map[string]json.RawMessage
	if err := json.Unmarshal(data, &head); err != nil {
		return nil // not an object: the strict pass reports where and why
	}
	raw, ok := head["v"]
	if !ok {
		return &Error{Path: "v", Msg: fmt.Sprintf("missing (want %d)", Version), Kind: ErrVersion}
	}
	if n, err := strconv.Atoi(string(raw)); err != nil || n != Version {
		return &Error{Path: "v", Msg: fmt.Sprintf("%s is not supported (want %d)", raw, Version), Kind: ErrVersion}
	}
	return nil
}

// Validate checks every field against its allowed values; the first problem is returned as an
// *Error wrapping ErrInvalid or ErrVersion.
func (c Config) Validate() error {
	if c.V != Version {
		return &Error{Path: "v", Msg: fmt.Sprintf("%d is not supported (want %d)", c.V, Version), Kind: ErrVersion}
	}
	checks := []error{
		required("station.state_dir", c.Station.StateDir),
		checkURL("cloud.issuer", c.Cloud.Issuer, "http", "https"),
		checkURL("cloud.broker", c.Cloud.Broker, "mqtt", "tcp", "mqtts"),
		checkSecure("cloud.issuer", c.Cloud.Issuer, c.Cloud.AllowInsecure),
		checkSecure("cloud.broker", c.Cloud.Broker, c.Cloud.AllowInsecure),
		checkOptionalURL("cloud.keys_url", c.Cloud.KeysURL, c.Cloud.AllowInsecure),
		required("cloud.client_id", c.Cloud.ClientID),
		checkScopes(c.Cloud.Scopes),
		checkClaim(c.Cloud.StationClaim),
		oneOf("board.kind", c.Board.Kind, boardKinds),
		checkSerial(c.Board),
		checkBoard(c.Board),
		checkPrinterURL(c.Printer.URL),
		checkFontDir(c.Printer.FontDir),
		oneOf("display.kind", c.Display.Kind, displayKinds),
		inRange("display.width", c.Display.Width, 1, maxPanel),
		inRange("display.height", c.Display.Height, 1, maxPanel),
		oneOf("display.bus", c.Display.Bus, displayBuses),
		oneOf("display.model", c.Display.Model, epaperModels),
		inRange("display.dim_seconds", c.Display.DimSeconds, 0, 86400),
		inRange("display.blank_seconds", c.Display.BlankSeconds, 0, 86400),
		oneOf("badge.reader", c.Badge.Reader, badgeReaders),
		inRange("journal.keep_days", c.Journal.KeepDays, 1, 365),
		inRange("journal.max_mb", c.Journal.MaxMB, 1, 1<<20),
		c.validateFleet(),
	}
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	return nil
}

// validateFleet checks the fields a fleet manager may set; ParseFleet uses it too, so a pushed
// value is refused with the same message as the same value in the local file.
func (c Config) validateFleet() error {
	checks := []error{
		oneOf("printer.lang", c.Printer.Lang, printerLangs),
		oneOf("printer.dpi", c.Printer.DPI, printerDPIs),
		checkZPLPrefix(c.Printer.ZPLPrefix),
		oneOf("display.rotate", c.Display.Rotate, rotations),
		inRange("display.contrast", c.Display.Contrast, 0, 255),
		oneOf("badge.encoding", c.Badge.Encoding, encodings),
		oneOf("badge.byte_order", c.Badge.ByteOrder, byteOrders),
		inRange("badge.bits", c.Badge.Bits, 0, maxBits),
		inRange("badge.repeat_ms", c.Badge.RepeatMS, 0, maxRepeatMS),
		oneOf("log.level", c.Log.Level, logLevels),
		checkHashKey(c.Badge.HashKey),
		oneOf("release.mode", c.Release.Mode, releaseModes),
		inRange("release.screen_seconds", c.Release.ScreenSeconds, 1, maxScreenSeconds),
		oneOf("release.order", c.Release.Order, releaseOrder),
		inRange("release.select_seconds", c.Release.SelectSeconds, 5, maxScreenSeconds),
		inRange("release.offline_seconds", c.Release.OfflineSeconds, 0, maxOffline),
		inRange("telemetry.interval_s", c.Telemetry.IntervalS, 1, 86400),
	}
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	return nil
}

func invalid(path, format string, args ...any) error {
	return &Error{Path: path, Msg: fmt.Sprintf(format, args...), Kind: ErrInvalid}
}

func required(path, s string) error {
	if s == "" {
		return invalid(path, "required")
	}
	return nil
}

func oneOf[T comparable](path string, v T, allowed []T) error {
	if slices.Contains(allowed, v) {
		return nil
	}
	list := make([]string, len(allowed))
	for i, a := range allowed {
		list[i] = fmt.Sprint(a)
	}
	shown := fmt.Sprint(v)
	if s, ok := any(v).(string); ok {
		shown = strconv.Quote(s)
		for i := range list {
			list[i] = strconv.Quote(list[i])
		}
	}
	return invalid(path, "%s is not one of %s", shown, strings.Join(list, ", "))
}

func inRange(path string, v, lo, hi int) error {
	if v < lo || v > hi {
		return invalid(path, "%d is not in %d-%d", v, lo, hi)
	}
	return nil
}

func checkURL(path, s string, schemes ...string) error {
	if s == "" {
		return invalid(path, "required")
	}
	u, err := url.Parse(s)
	if err != nil {
		return invalid(path, "%q is not a URL", s)
	}
	if !slices.Contains(schemes, u.Scheme) {
		return invalid(path, "scheme %q is not one of %s", u.Scheme, strings.Join(schemes, ", "))
	}
	if u.Host == "" {
		return invalid(path, "%q has no host", s)
	}
	return nil
}

// checkClaim: a JSON member name, non-empty; anything printable can be a claim name.
func checkClaim(name string) error {
	if name == "" || strings.ContainsFunc(name, func(r rune) bool { return r < 0x21 || r == 0x7f }) {
		return invalid("cloud.station_claim", "%q is not a claim name (e.g. sub, tp_id, station_id)", name)
	}
	return nil
}

// checkSecure refuses cleartext to another machine unless cloud.allow_insecure says so: tokens
// and jobs would cross the network readable and alterable by anyone on the path.
func checkSecure(path, s string, allowInsecure bool) error {
	if err := trust.CheckTransport(s, allowInsecure); err != nil {
		return invalid(path, "%q: %v", s, trust.ErrCleartext)
	}
	return nil
}

func checkOptionalURL(path, s string, allowInsecure bool) error {
	if s == "" {
		return nil
	}
	if err := checkURL(path, s, "http", "https"); err != nil {
		return err
	}
	return checkSecure(path, s, allowInsecure)
}

func checkScopes(scopes []string) error {
	if len(scopes) == 0 {
		return invalid("cloud.scopes", "must not be empty")
	}
	for i, s := range scopes {
		// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
		if s == "" || strings.ContainsFunc(s, func(r rune) bool { return r < 0x21 || r > 0x7e || r == '"' || r == '\\' }) {
			return invalid(fmt.Sprintf("cloud.scopes[%d]", i), "%q is not a valid scope (RFC 6749 §3.3)", s)
		}
	}
	return nil
}

// checkBoard lets the board package judge pins and buses; its errors name the map entry.
func checkBoard(b Board) error {
	bc := b.BoardConfig()
	if b.Kind == "sim" {
		bc = board.Config{Kind: "sim", LongPressMs: b.LongPressMs} // no pins to judge
	} else {
		bc.Kind = "rpi" // fakepi is a Pi assembled from test doubles: same wiring rules
	}
	if err := bc.Validate(); err != nil {
		return &Error{Msg: strings.TrimPrefix(err.Error(), "board: "), Kind: ErrInvalid}
	}
	return nil
}

func checkSerial(b Board) error {
	if b.Serial != "" && b.Kind != "sim" {
		return invalid("board.serial", "only allowed with board.kind \"sim\" (real boards report their own)")
	}
	return nil
}

// checkFontDir: a path, or empty for the built-in fonts alone. Whether it holds fonts is
// found when the first job needs them, so a missing directory never stops the station.
func checkFontDir(s string) error {
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return invalid("printer.font_dir", "%q contains a control character", s)
	}
	return nil
}

// zplSetup are the ZPL commands printer.zpl_prefix may hold: they set up media and print
// quality for the label they start and change nothing the printer saves.
var zplSetup = []string{"^MD", "^PR", "^MN", "^MT", "^LH", "^LT", "^LS", "^PW", "^LL", "^PO"}

const maxZPLPrefix = 256

// checkZPLPrefix accepts a run of zplSetup commands whose parameters are letters, digits,
// commas, signs and dots, so the prefix can neither end the label nor smuggle in another
// command.
func checkZPLPrefix(s string) error {
	const path = "printer.zpl_prefix"
	if s == "" {
		return nil
	}
	if len(s) > maxZPLPrefix {
		return invalid(path, "%d bytes, more than %d", len(s), maxZPLPrefix)
	}
	if s[0] != '^' {
		return invalid(path, "%q does not start with a ^ command", s)
	}
	for i := 0; i < len(s); {
		end := strings.IndexByte(s[i+1:], '^')
		if end < 0 {
			end = len(s)
		} else {
			end += i + 1
		}
		cmd := s[i:end]
		name := strings.ToUpper(cmd[:min(len(cmd), 3)])
		if !slices.Contains(zplSetup, name) {
			return invalid(path, "%s at offset %d is not one of %s", name, i, strings.Join(zplSetup, ", "))
		}
		if j := strings.IndexFunc(cmd[3:], func(r rune) bool {
			return !(r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || strings.ContainsRune(",.+-", r))
		}); j >= 0 {
			return invalid(path, "%q at offset %d is not a parameter of %s", cmd[3+j], i+3+j, name)
		}
		i = end
	}
	return nil
}

func checkHashKey(s string) error {
	if s == "" {
		return nil
	}
	k, err := hex.DecodeString(s)
	if err != nil {
		return invalid("badge.hash_key", "not hex")
	}
	if len(k) < minHashKey {
		return invalid("badge.hash_key", "%d bytes, want at least %d", len(k), minHashKey)
	}
	return nil
}

// Endpoint is a parsed printer URL.
type Endpoint struct {
	Scheme  string // tcp, usb or serial
	Address string // host:port for tcp, the device path otherwise
	Baud    int    // serial only; 0 means the driver's default
}

// Endpoint parses Printer.URL; it cannot fail on a validated Config.
func (p Printer) Endpoint() (Endpoint, error) {
	u, err := url.Parse(p.URL)
	if err != nil {
		return Endpoint{}, invalid("printer.url", "%q is not a URL", p.URL)
	}
	switch u.Scheme {
	case "tcp":
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil || host == "" || port == "" {
			return Endpoint{}, invalid("printer.url", "%q: want tcp://host:port", p.URL)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return Endpoint{}, invalid("printer.url", "%q: port %q is not in 1-65535", p.URL, port)
		}
		if u.Path != "" || u.RawQuery != "" {
			return Endpoint{}, invalid("printer.url", "%q: want tcp://host:port with nothing after the port", p.URL)
		}
		return Endpoint{Scheme: u.Scheme, Address: u.Host}, nil
	case "usb", "serial":
		if u.Host != "" || !strings.HasPrefix(u.Path, "/dev/") {
			return Endpoint{}, invalid("printer.url", "%q: want %s:///dev/...", p.URL, u.Scheme)
		}
		e := Endpoint{Scheme: u.Scheme, Address: u.Path}
		q := u.Query()
		for k := range q {
			if u.Scheme != "serial" || k != "baud" {
				return Endpoint{}, invalid("printer.url", "%q: unknown parameter %q", p.URL, k)
			}
		}
		if b := q.Get("baud"); b != "" {
			n, err := strconv.Atoi(b)
			if err != nil || n <= 0 {
				return Endpoint{}, invalid("printer.url", "%q: baud %q is not a positive integer", p.URL, b)
			}
			e.Baud = n
		}
		return e, nil
	case "":
		return Endpoint{}, invalid("printer.url", "required")
	}
	return Endpoint{}, invalid("printer.url", "scheme %q is not one of tcp, usb, serial", u.Scheme)
}

func checkPrinterURL(s string) error {
	_, err := Printer{URL: s}.Endpoint()
	return err
}

// Key returns the decoded HashKey, nil when none is set. On a validated Config it cannot fail.
func (b Badge) Key() []byte {
	k, err := hex.DecodeString(b.HashKey)
	if err != nil || len(k) == 0 {
		return nil
	}
	return k
}

// Repeat is RepeatMS as a duration.
func (b Badge) Repeat() time.Duration { return time.Duration(b.RepeatMS) * time.Millisecond }

// ScreenTime is ScreenSeconds as a duration.
func (r Release) ScreenTime() time.Duration { return time.Duration(r.ScreenSeconds) * time.Second }

// SelectTime is how long the job list and the preview wait for a button.
func (r Release) SelectTime() time.Duration { return time.Duration(r.SelectSeconds) * time.Second }

// OfflineTime is how long a recognised badge may release jobs already here while offline.
func (r Release) OfflineTime() time.Duration { return time.Duration(r.OfflineSeconds) * time.Second }
