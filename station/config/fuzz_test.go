package config

import (
	"errors"
	"strings"
	"testing"

	"labelstation/protocol"
)

// FuzzFleetPush follows a fleet push the way the station takes it: the ConfigDesired message,
// then its config document, then Apply onto a valid local config. Nothing panics; a refusal is
// a config error naming a sentinel; a document ParseFleet accepts applies to a valid config and
// leaves it valid (ParseFleet promises to check every value it sets).
func FuzzFleetPush(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"version":"cfg_81f0","config":{"v":1,"badge":{"hash_key":"6b6579"},"printer":{"dpi":300}}}`,
		`{"v":1,"version":"cfg_2","config":{"v":1,"printer":{"dpi":250}}}`,
		`{"v":1,"version":"cfg_3","config":{"v":1,"printer":{"url":"tcp://evil:9100"}}}`,
		`{"v":1,"version":"cfg_4","config":{"v":1,"release":{"mode":"confirm","screen_seconds":5},"display":{"rotate":180,"contrast":10}}}`,
		`{"v":1,"version":"cfg_5","config":{"v":1,"badge":{"encoding":"decimal","byte_order":"lsb","bits":26,"repeat_ms":1500}}}`,
		`{"v":1,"version":"cfg_6","config":{"v":2}}`,
		`{"v":1,"version":"cfg_7","config":{"v":1,"printer":{"dpi":"300"}}}`,
	} {
		f.Add([]byte(s))
	}
	base, err := Parse([]byte(minimal))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var d protocol.ConfigDesired
		if err := protocol.Decode(data, &d); err != nil {
			return // covered by the protocol package's fuzz targets
		}
		fl, err := ParseFleet(d.Config)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "config: ") {
				t.Fatalf("error without prefix: %v", err)
			}
			if !errors.Is(err, ErrVersion) && !errors.Is(err, ErrUnknownField) && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrSyntax) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		c, err := base.Apply(fl)
		if err != nil {
			t.Fatalf("ParseFleet accepted %s but Apply refused it: %v", d.Config, err)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("applied config is invalid: %v", err)
		}
	})
}
