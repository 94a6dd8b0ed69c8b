package selfexec

import (
	"os"
	"strings"
	"testing"
)

const childEnv = "SELFEXEC_TEST_CHILD"

func TestCommandRunsThisBinary(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		os.Stdout.WriteString("child ran\n")
		os.Exit(7)
	}
	cmd := Command("-test.run=^TestCommandRunsThisBinary$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 7 || !strings.Contains(string(out), "child ran") {
		t.Fatalf("child: %v %q; want exit 7 and its output", cmd.ProcessState, out)
	}
}

func TestCommandGoesThroughTheWrapper(t *testing.T) {
	t.Setenv(Env, "qemu-aarch64-static -L /usr/aarch64-linux-gnu")
	cmd := Command("-test.run=^X$")
	want := []string{"qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu", os.Args[0], "-test.run=^X$"}
	if strings.Join(cmd.Args, " ") != strings.Join(want, " ") {
		t.Fatalf("Args = %q, want %q", cmd.Args, want)
	}
}
