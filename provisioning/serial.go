package provisioning

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// ErrNoSerial: none of the serial number sources exists or holds a usable value.
var ErrNoSerial = errors.New("provisioning: no hardware serial found")

// serialSources are tried in order, paths relative to the root file system:
// the Raspberry Pi firmware's "Serial" line in /proc/cpuinfo (the SoC's OTP
// serial), the device tree's serial-number (other ARM boards, and Pis whose
// kernel dropped the cpuinfo line), then systemd's /etc/machine-id, which
// survives reboots but not re-imaging.
var serialSources = []struct {
	path  string
	parse func([]byte) string
}{
	{"proc/cpuinfo", cpuinfoSerial},
	{"sys/firmware/devicetree/base/serial-number", trimSerial},
	{"etc/machine-id", trimSerial},
}

// HardwareSerial returns the board's serial number, read from root (normally
// os.DirFS("/")), to send as serial_number with the device request.
func HardwareSerial(root fs.FS) (string, error) {
	for _, src := range serialSources {
		b, err := fs.ReadFile(root, src.path)
		if err != nil {
			continue
		}
		if s := src.parse(b); s != "" {
			return s, nil
		}
	}
	var tried []string
	for _, src := range serialSources {
		tried = append(tried, "/"+src.path)
	}
	return "", fmt.Errorf("%w (tried %s)", ErrNoSerial, strings.Join(tried, ", "))
}

// cpuinfoSerial finds "Serial : 10000000abcdef01"; all-zero serials (boards
// without OTP serial) count as none.
func cpuinfoSerial(b []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "Serial" {
			return trimSerial([]byte(v))
		}
	}
	return ""
}

// trimSerial cleans a serial: device-tree strings end in NUL, files in a
// newline. Anything that is not a plain token, or all zeros, is rejected.
func trimSerial(b []byte) string {
	s := strings.ToLower(strings.TrimSpace(strings.TrimRight(string(b), "\x00")))
	if s == "" || strings.Trim(s, "0") == "" || len(s) > 64 {
		return ""
	}
	for _, c := range s {
		if c <= ' ' || c > '~' {
			return ""
		}
	}
	return s
}
