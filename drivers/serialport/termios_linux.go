package serialport

import "golang.org/x/sys/unix"

// speedCode is a Bnnn constant: on Linux a code kept in Cflag's CBAUD bits.
type speedCode = uint32

const (
	ioctlGetTermios = unix.TCGETS
	ioctlSetTermios = unix.TCSETS
)

func setSpeed(t *unix.Termios, s speedCode) {
	t.Cflag &^= unix.CBAUD
	t.Cflag |= s
	t.Ispeed, t.Ospeed = s, s
}
