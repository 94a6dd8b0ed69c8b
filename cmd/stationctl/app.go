package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"
)

// multiFlag collects a flag given several times.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// registeredApp mirrors devcloud's registration answer (RFC 7591 §3.2.1 field names).
type registeredApp struct {
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"client_secret,omitempty"`
	Name         string   `json:"client_name"`
	Description  string   `json:"description,omitempty"`
	IconURL      string   `json:"logo_uri,omitempty"`
	RedirectURIs []string `json:"redirect_uris"`
	IssuedAt     int64    `json:"client_id_issued_at"`
}

// appCmd registers external applications that act for the users who authorize them, lists
// and removes them: `app register`, `app ls`, `app rm`, with a fleet administrator's token.
func appCmd(args []string, out io.Writer) error {
	if len(args) == 0 || (args[0] != "register" && args[0] != "ls" && args[0] != "rm") {
		return fmt.Errorf("%w: app register|ls|rm", errUsage)
	}
	verb := args[0]
	fs, f := fleetFlagSet("app " + verb)
	var reg struct {
		Name         string   `json:"client_name"`
		Description  string   `json:"description,omitempty"`
		IconURL      string   `json:"logo_uri,omitempty"`
		RedirectURIs []string `json:"redirect_uris"`
	}
	var redirects multiFlag
	if verb == "register" {
		fs.StringVar(&reg.Name, "name", "", "the name users see on the consent page")
		fs.StringVar(&reg.Description, "description", "", "what the application does, shown on the consent page")
		fs.StringVar(&reg.IconURL, "icon", "", "URL of the application's icon (https)")
		fs.Var(&redirects, "redirect", "a redirect URI (repeat for more); a loopback http one accepts any port")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if f.token == "" {
		return fmt.Errorf("%w: --token (a fleet administrator's access token, or $STATIONCTL_TOKEN) is required", errUsage)
	}
	method, body, path := http.MethodGet, []byte(nil), "/oauth/register"
	if verb == "rm" {
		if fs.NArg() != 1 {
			return fmt.Errorf("%w: app rm CLIENT_ID", errUsage)
		}
		method, path = http.MethodDelete, path+"/"+url.PathEscape(fs.Arg(0))
	}
	if verb == "register" {
		if reg.Name == "" || len(redirects) == 0 {
			return fmt.Errorf("%w: app register needs --name and at least one --redirect", errUsage)
		}
		reg.RedirectURIs = redirects
		method, body = http.MethodPost, mustJSON(reg)
	}
	req, err := http.NewRequest(method, strings.TrimRight(f.cloud, "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+f.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", errUnreachable, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%w: %v", errUnreachable, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
			Desc  string `json:"error_description"`
		}
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			return fmt.Errorf("app %s: HTTP %d", verb, resp.StatusCode)
		}
		return fmt.Errorf("app %s: %s: %s", verb, e.Error, e.Desc)
	}
	if verb == "rm" {
		fmt.Fprintf(out, "removed %s; the grants users gave it are revoked\n", fs.Arg(0))
		return nil
	}
	if f.json {
		_, err := out.Write(b)
		return err
	}
	if verb == "register" {
		var a registeredApp
		if err := json.Unmarshal(b, &a); err != nil {
			return fmt.Errorf("app register: answer: %w", err)
		}
		fmt.Fprintf(out, "client_id:     %s\nclient_secret: %s\n", a.ClientID, a.ClientSecret)
		fmt.Fprintln(out, "Keep the secret now: devcloud stores only its hash and cannot show it again.")
		return nil
	}
	var apps []registeredApp
	if err := json.Unmarshal(b, &apps); err != nil {
		return fmt.Errorf("app ls: answer: %w", err)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT ID\tNAME\tREGISTERED\tREDIRECT URIS")
	for _, a := range apps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.ClientID, a.Name, time.Unix(a.IssuedAt, 0).UTC().Format("2006-01-02 15:04"), strings.Join(a.RedirectURIs, " "))
	}
	return tw.Flush()
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain structs of strings always marshal
	}
	return b
}

var _ flag.Value = (*multiFlag)(nil)
