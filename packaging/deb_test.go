package packaging

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// debArch is the Debian name of this machine's architecture, for the packages this test can
// install and run.
var debArch = map[string]string{"amd64": "amd64", "arm64": "arm64"}[runtime.GOARCH]

func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// buildDeb builds the binaries and the .deb the way make deb does, for this architecture only.
func buildDeb(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"go", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install it (apt-get install dpkg) to build and check the .deb", tool)
		}
	}
	if debArch == "" {
		t.Skipf("no Debian package for %s", runtime.GOARCH)
	}
	dist := t.TempDir()
	bin := filepath.Join(dist, "linux-"+runtime.GOARCH) + "/"
	run(t, "..", []string{"CGO_ENABLED=0", "GOOS=linux"}, "go", "build", "-trimpath",
		"-ldflags", "-s -w -X labelstation/internal/buildinfo.Version=1.2.3-test", "-o", bin, "./cmd/stationd", "./cmd/stationctl")
	run(t, "..", []string{"DIST=" + dist, "VERSION=v1.2.3-test", "ISSUER=https://cloud.example.test", "BROKER=mqtts://cloud.example.test:8883"},
		"scripts/deb.sh", debArch)
	deb := filepath.Join(dist, "stationd_1.2.3-test_"+debArch+".deb")
	if _, err := os.Stat(deb); err != nil {
		t.Fatal(err)
	}
	return deb
}

func TestDebContents(t *testing.T) {
	deb := buildDeb(t)
	list := run(t, "", nil, "dpkg-deb", "-c", deb)
	for _, want := range []string{
		"-rwxr-xr-x root/root .* ./usr/bin/stationd",
		"-rwxr-xr-x root/root .* ./usr/bin/stationctl",
		"-rw-r--r-- root/root .* ./usr/lib/systemd/system/stationd.service",
		"-rw-r--r-- root/root .* ./usr/lib/udev/rules.d/60-stationd.rules",
		"-rw-r----- root/root .* ./etc/stationd/stationd.json",
	} {
		if !matchLine(list, want) {
			t.Errorf("dpkg-deb -c has no line matching %q:\n%s", want, list)
		}
	}
	fields := run(t, "", nil, "dpkg-deb", "-f", deb, "Package", "Version", "Architecture")
	if want := fmt.Sprintf("Package: stationd\nVersion: 1.2.3-test\nArchitecture: %s\n", debArch); fields != want {
		t.Errorf("control fields:\n%s\nwant\n%s", fields, want)
	}
	ctrl := t.TempDir()
	run(t, "", nil, "dpkg-deb", "-e", deb, ctrl)
	conffiles, err := os.ReadFile(filepath.Join(ctrl, "conffiles"))
	if err != nil || strings.TrimSpace(string(conffiles)) != "/etc/stationd/stationd.json" {
		t.Errorf("conffiles = %q, %v; want the config kept on upgrade", conffiles, err)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		if fi, err := os.Stat(filepath.Join(ctrl, s)); err != nil || fi.Mode()&0o111 == 0 {
			t.Errorf("maintainer script %s: %v", s, err)
		}
	}
}

func matchLine(list, pattern string) bool {
	pre, post, _ := strings.Cut(pattern, " .* ")
	for _, l := range strings.Split(list, "\n") {
		if strings.HasPrefix(l, pre) && strings.HasSuffix(l, post) {
			return true
		}
	}
	return false
}

// TestDebInstallIntoScratchRoot installs the package with dpkg into an empty root (the
// maintainer scripts run chrootless with DPKG_ROOT, as for a Pi image being built), checks the
// user, groups, state directory and enabled unit, runs the installed stationd --check-config,
// upgrades over a locally edited config and purges.
func TestDebInstallIntoScratchRoot(t *testing.T) {
	deb := buildDeb(t)
	if os.Geteuid() != 0 {
		t.Skip("installing with dpkg --root needs root (the maintainer scripts chown the state directory); run the tests as root, as CI does")
	}
	for _, tool := range []string{"dpkg", "useradd", "groupadd", "usermod"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install dpkg and passwd to run the scratch-root install", tool)
		}
	}
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A minimal system: lp and dialout exist, i2c, spi, gpio, input and video do not.
	files := map[string]string{
		"var/lib/dpkg/status": "",
		"etc/passwd":          "root:x:0:0:root:/root:/bin/sh\n",
		"etc/shadow":          "root:*:19000:0:99999:7:::\n",
		"etc/group":           "root:x:0:\nlp:x:7:\ndialout:x:20:\n",
		"etc/gshadow":         "root:*::\nlp:*::\ndialout:*::\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dpkg := func(args ...string) string {
		t.Helper()
		return run(t, "", nil, "dpkg", append([]string{"--root=" + root, "--force-script-chrootless", "--force-depends",
			"--force-bad-path", "--force-unsafe-io", "--force-confold", "--log=/dev/null"}, args...)...)
	}
	dpkg("--install", deb)

	passwd := readFile(t, root, "etc/passwd")
	user := lineOf(passwd, "stationd:")
	if user == "" || !strings.HasSuffix(user, ":/var/lib/stationd:/usr/sbin/nologin") {
		t.Fatalf("no stationd system user with home /var/lib/stationd and no shell:\n%s", passwd)
	}
	group := readFile(t, root, "etc/group")
	for _, g := range []string{"lp", "dialout", "i2c", "spi", "gpio", "input", "video"} {
		l := lineOf(group, g+":")
		if l == "" || !strings.Contains(","+l[strings.LastIndex(l, ":")+1:]+",", ",stationd,") {
			t.Errorf("group %s missing or without stationd: %q", g, l)
		}
	}
	state, err := os.Stat(filepath.Join(root, "var/lib/stationd"))
	if err != nil || state.Mode().Perm() != 0o700 || !state.IsDir() {
		t.Fatalf("state dir: %v %v; want a 0700 directory", state, err)
	}
	if uid := fmt.Sprint(ownerUID(state)); !strings.HasPrefix(user, "stationd:x:"+uid+":") {
		t.Errorf("state dir owned by uid %s, not stationd (%s)", uid, user)
	}
	link, err := os.Readlink(filepath.Join(root, "etc/systemd/system/multi-user.target.wants/stationd.service"))
	if err != nil || link != "/usr/lib/systemd/system/stationd.service" {
		t.Errorf("service not enabled: %q, %v", link, err)
	}
	if fi, err := os.Stat(filepath.Join(root, "etc/stationd/stationd.json")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("config mode: %v %v; want 0640", fi, err)
	}

	// The installed binary accepts the packaged config.
	stationd := filepath.Join(root, "usr/bin/stationd")
	out := run(t, "", nil, stationd, "--check-config", "--state", filepath.Join(root, "var/lib/stationd"), filepath.Join(root, "etc/stationd/stationd.json"))
	if !strings.Contains(out, ": ok") || !strings.Contains(out, "issuer https://cloud.example.test") || !strings.Contains(out, "board rpi") {
		t.Fatalf("stationd --check-config:\n%s", out)
	}
	if v := run(t, "", nil, stationd, "--version"); !strings.HasPrefix(v, "stationd 1.2.3-test ") {
		t.Errorf("--version = %q", v)
	}

	// An upgrade keeps the admin's edit of the config and the state.
	cfg := filepath.Join(root, "etc/stationd/stationd.json")
	edited := strings.Replace(readFile(t, root, "etc/stationd/stationd.json"), `"level": "info"`, `"level": "debug"`, 1)
	if err := os.WriteFile(cfg, []byte(edited), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "var/lib/stationd/tokens.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	dpkg("--install", deb)
	if got := readFile(t, root, "etc/stationd/stationd.json"); got != edited {
		t.Errorf("upgrade replaced the edited config:\n%s", got)
	}
	if _, err := os.Stat(filepath.Join(root, "var/lib/stationd/tokens.json")); err != nil {
		t.Errorf("upgrade lost the state: %v", err)
	}
	if n := strings.Count(readFile(t, root, "etc/passwd"), "\nstationd:"); n != 1 {
		t.Errorf("%d stationd users after the upgrade", n)
	}

	// Purge removes files, config and state; the system user stays (Debian policy).
	dpkg("--purge", "stationd")
	for _, gone := range []string{"usr/bin/stationd", "etc/stationd/stationd.json", "var/lib/stationd",
		"etc/systemd/system/multi-user.target.wants/stationd.service"} {
		if _, err := os.Lstat(filepath.Join(root, gone)); !os.IsNotExist(err) {
			t.Errorf("%s still there after purge: %v", gone, err)
		}
	}
}

func readFile(t *testing.T, root, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func lineOf(text, prefix string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}
