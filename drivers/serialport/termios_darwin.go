package serialport

import "golang.org/x/sys/unix"

// speedCode is a Bnnn constant: on macOS the speed itself, kept in Ispeed/Ospeed only.
type speedCode = uint64

const (
	ioctlGetTermios = unix.TIOCGETA
	ioctlSetTermios = unix.TIOCSETA
)

func setSpeed(t *unix.Termios, s speedCode) { t.Ispeed, t.Ospeed = s, s }
