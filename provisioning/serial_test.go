package provisioning

import (
	"errors"
	"testing"
	"testing/fstest"
)

// cpuinfoPi is the tail of /proc/cpuinfo on a Raspberry Pi 4 (Raspberry Pi
// OS, kernel 6.1); the serial is made up.
const cpuinfoPi = `processor	: 3
BogoMIPS	: 108.00
Features	: fp asimd evtstrm crc32 cpuid
CPU implementer	: 0x41

Hardware	: BCM2835
Revision	: c03114
Serial		: 10000000ABCDEF01
Model		: Raspberry Pi 4 Model B Rev 1.4
`

func TestHardwareSerial(t *testing.T) {
	for _, tc := range []struct {
		name string
		fs   fstest.MapFS
		want string
	}{
		{"pi cpuinfo", fstest.MapFS{
			"proc/cpuinfo":   {Data: []byte(cpuinfoPi)},
			"etc/machine-id": {Data: []byte("0123456789abcdef0123456789abcdef\n")},
		}, "10000000abcdef01"},
		{"device tree, NUL-terminated", fstest.MapFS{
			"proc/cpuinfo": {Data: []byte("processor\t: 0\nSerial\t\t: 0000000000000000\n")},
			"sys/firmware/devicetree/base/serial-number": {Data: []byte("00000000c0ffee42\x00")},
		}, "00000000c0ffee42"},
		{"machine-id fallback", fstest.MapFS{
			"proc/cpuinfo":   {Data: []byte("processor\t: 0\n")},
			"etc/machine-id": {Data: []byte("0123456789abcdef0123456789abcdef\n")},
		}, "0123456789abcdef0123456789abcdef"},
	} {
		got, err := HardwareSerial(tc.fs)
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	_, err := HardwareSerial(fstest.MapFS{"etc/machine-id": {Data: []byte("bad id with spaces\n")}})
	if !errors.Is(err, ErrNoSerial) {
		t.Errorf("no usable source: %v, want ErrNoSerial", err)
	}
}
