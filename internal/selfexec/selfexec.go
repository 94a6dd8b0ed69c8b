// Package selfexec re-launches the running test binary, for tests that must watch a process die
// (a crash mid-write, a SIGKILL between two steps). Under `go test -exec` with an emulator and
// no binfmt_misc — make test-arm runs the ARM tests with qemu-user — the binary cannot be
// executed directly; the exec wrapper names itself in the Env variable and the child is started
// through it too.
package selfexec

import (
	"os"
	"os/exec"
	"strings"
)

// Env holds the exec wrapper command (e.g. "qemu-aarch64-static"), empty when the test binary
// runs natively.
const Env = "LABELSTATION_TEST_EXEC"

// Command returns a command running this test binary with args, through the exec wrapper if
// there is one.
func Command(args ...string) *exec.Cmd {
	wrapper := strings.Fields(os.Getenv(Env))
	if len(wrapper) == 0 {
		return exec.Command(os.Args[0], args...)
	}
	argv := append(append(wrapper[1:len(wrapper):len(wrapper)], os.Args[0]), args...)
	return exec.Command(wrapper[0], argv...)
}
