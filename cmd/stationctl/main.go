// Command stationctl is the admin and developer CLI: render a label locally, get an app token
// and submit a job to a cloud, approve a pairing code, and tap a badge on a simulated station.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

const usage = `usage: stationctl COMMAND [flags] [args]

commands:
  render   LAYOUT DATA --out DIR [--lang zpl|tspl|escpos|png] [--dpi N] [--raster]
           render a layout with data locally, as the station would
  token    --cloud URL --client ID --secret SECRET
           get an access token for an external app (client_credentials grant)
  submit   --cloud URL --token TOKEN --title TITLE --format LAYOUT DATAFILE
           submit a print job (Submit Print Job API); it is held until its owner taps a badge
  approve  --cloud URL --user USER [--password PASSWORD] CODE
           approve a station's pairing code as USER (devcloud; password or $STATIONCTL_PASSWORD)
  hash-password
           read a password on stdin, print its bcrypt hash (devcloud seed password_hash)
  tap      [--station URL] UIDHEX
           tap a badge on a simulated station (stationd --sim)
  status   [--socket PATH] [--json]
           on the station: state, enrollment, broker, printer, journal, versions, last errors
  version  print the version, commit and build date

fleet (flags: --cloud URL --token TOKEN [--json] [--timeout 30s]; docs/fleet.md):
  ls                               list stations
  show ID                          one station: config versions, telemetry
  config get|set|patch ID|group:NAME [FILE|-|JSON]
                                   read, replace or merge-patch desired config; set and patch
                                   wait for every station's accepted/rejected answer
  cmd [--ttl S] ID|group:NAME NAME [KEY=VALUE...]
                                   run reboot, reenroll, test_print, print_pairing, identify,
                                   ping or log_level (level=debug) and wait for the answers
  group ID GROUP|-                  put a station in a group (- for none) and wait for its answer
  app register --name NAME --redirect URL [--redirect URL...] [--description TEXT] [--icon URL]
                                   register an application that acts for the users who allow
                                   it (docs/apps.md); prints its client id and secret
  app ls                           list the registered applications
  app rm CLIENT_ID                 remove one; the grants users gave it are revoked
  watch                            follow the fleet's live events
exit codes: 0 ok, 1 error, 2 usage, 3 rejected or failed, 4 timed out, 5 cloud unreachable
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "stationctl:", err)
		if errors.Is(err, errUsage) {
			fmt.Fprint(os.Stderr, usage)
			os.Exit(2)
		}
		os.Exit(exitCode(err))
	}
}

var errUsage = errors.New("bad usage")

func run(cmd string, args []string, out io.Writer) error {
	switch cmd {
	case "render":
		return renderCmd(args)
	case "token":
		return tokenCmd(args, out)
	case "submit":
		return submitCmd(args, out)
	case "approve":
		return approveCmd(args, out)
	case "tap":
		return tapCmd(args, out)
	case "status":
		return statusCmd(args, out)
	case "version", "--version", "-version":
		fmt.Fprintln(out, versionString("stationctl"))
		return nil
	case "ls":
		return lsCmd(args, out)
	case "show":
		return showCmd(args, out)
	case "config":
		return configCmd(args, out)
	case "cmd":
		return cmdCmd(args, out)
	case "watch":
		return watchCmd(args, out)
	case "group":
		return groupCmd(args, out)
	case "hash-password":
		return hashPasswordCmd(args, out)
	case "app":
		return appCmd(args, out)
	case "help", "-h", "--help":
		fmt.Fprint(out, usage)
		return nil
	}
	return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
}

var client = &http.Client{Timeout: 30 * time.Second}

func tokenCmd(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	cloud := fs.String("cloud", "http://127.0.0.1:8780", "cloud base URL (the OAuth issuer)")
	id := fs.String("client", "", "client id of the app")
	secret := fs.String("secret", os.Getenv("STATIONCTL_SECRET"), "client secret (or $STATIONCTL_SECRET)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *id == "" || *secret == "" {
		return fmt.Errorf("%w: token needs --client and --secret", errUsage)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := appToken(ctx, strings.TrimRight(*cloud, "/")+"/oauth/token", *id, *secret)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, tok)
	return nil
}

// appToken gets an app's access token with the client_credentials grant (RFC 6749 §4.4). It
// speaks to the cloud over HTTP only, so the CLI carries no server code.
func appToken(ctx context.Context, tokenURL, clientID, secret string) (string, error) {
	cc := clientcredentials.Config{
		ClientID: clientID, ClientSecret: secret, TokenURL: tokenURL, Scopes: []string{"printing"},
		AuthStyle: oauth2.AuthStyleInHeader, // fixed: auto-detect would send a failing request twice
	}
	tok, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, client))
	if err != nil {
		return "", fmt.Errorf("client_credentials for %s: %w", clientID, err)
	}
	return tok.AccessToken, nil
}

func submitCmd(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("submit", flag.ContinueOnError)
	cloud := fs.String("cloud", "http://127.0.0.1:8780", "cloud base URL")
	token := fs.String("token", os.Getenv("STATIONCTL_TOKEN"), "access token (or $STATIONCTL_TOKEN)")
	title := fs.String("title", "", "job title shown on the station")
	layout := fs.String("format", "", "layout id")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() != 1 || *token == "" {
		return fmt.Errorf("%w: submit needs --token and one DATAFILE", errUsage)
	}
	data, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	w.WriteField("title", *title)
	w.WriteField("format", *layout)
	fw, err := w.CreateFormFile("data", filepath.Base(fs.Arg(0)))
	if err != nil {
		return err
	}
	fw.Write(data)
	w.Close()
	req, err := http.NewRequest(http.MethodPost, strings.TrimRight(*cloud, "/")+"/v1/jobs", &body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+*token)
	return call(req, http.StatusCreated, out)
}

func approveCmd(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("approve", flag.ContinueOnError)
	cloud := fs.String("cloud", "http://127.0.0.1:8780", "cloud base URL")
	user := fs.String("user", "", "user who approves")
	password := fs.String("password", os.Getenv("STATIONCTL_PASSWORD"), "the user's password (or $STATIONCTL_PASSWORD)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() != 1 || *user == "" || *password == "" {
		return fmt.Errorf("%w: approve needs --user, --password (or $STATIONCTL_PASSWORD) and one CODE", errUsage)
	}
	b, _ := json.Marshal(map[string]string{"user_code": fs.Arg(0)})
	req, err := http.NewRequest(http.MethodPost, strings.TrimRight(*cloud, "/")+"/device/approve", bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(*user, *password)
	return call(req, http.StatusOK, out)
}

// stdin is where hash-password reads; tests replace it.
var stdin io.Reader = os.Stdin

// hashPasswordCmd reads the password from stdin, so it stays out of shell history and ps.
func hashPasswordCmd(args []string, out io.Writer) error {
	if len(args) != 0 {
		return fmt.Errorf("%w: hash-password takes the password on stdin", errUsage)
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	pw := strings.TrimRight(line, "\r\n")
	if len(pw) < 12 {
		return errors.New("hash-password: want a password of at least 12 characters on stdin")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost) // what devcloud's seed file expects
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, string(h))
	return err
}

func tapCmd(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("tap", flag.ContinueOnError)
	station := fs.String("station", "http://127.0.0.1:8781", "the simulated station's web page (stationd --web)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: tap needs one UIDHEX", errUsage)
	}
	req, err := http.NewRequest(http.MethodPost, strings.TrimRight(*station, "/")+"/tap", strings.NewReader(url.Values{"uid": {fs.Arg(0)}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return call(req, http.StatusOK, out)
}

// call sends req and copies the answer to out; another status is an error carrying the body.
func call(req *http.Request, want int, out io.Writer) error {
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s: %s", req.Method, req.URL, resp.Status, strings.TrimSpace(string(b)))
	}
	_, err = out.Write(b)
	return err
}
