package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"labelstation/protocol"
)

// Fleet verbs talk to the cloud's fleet API over HTTP only (docs/fleet.md).

// Exit codes that tell a script what went wrong.
var (
	errRejected    = errors.New("rejected")
	errTimedOut    = errors.New("timed out")
	errUnreachable = errors.New("cloud unreachable")
)

const (
	exitRejected    = 3
	exitTimedOut    = 4
	exitUnreachable = 5
)

// exitCode maps an error of a fleet verb to the process's exit code.
func exitCode(err error) int {
	switch {
	case errors.Is(err, errRejected):
		return exitRejected
	case errors.Is(err, errTimedOut):
		return exitTimedOut
	case errors.Is(err, errUnreachable):
		return exitUnreachable
	}
	return 1
}

type fleetFlags struct {
	cloud, token string
	json         bool
	timeout      time.Duration
}

func fleetFlagSet(name string) (*flag.FlagSet, *fleetFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	f := &fleetFlags{}
	def := os.Getenv("STATIONCTL_CLOUD")
	if def == "" {
		def = "http://127.0.0.1:8780"
	}
	fs.StringVar(&f.cloud, "cloud", def, "cloud base URL ($STATIONCTL_CLOUD)")
	fs.StringVar(&f.token, "token", os.Getenv("STATIONCTL_TOKEN"), "a fleet manager's access token ($STATIONCTL_TOKEN)")
	fs.BoolVar(&f.json, "json", false, "print JSON for scripts")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "how long to wait for the stations' answers")
	return fs, f
}

// api calls the fleet API; errors carry the API's code, message and request id.
func (f *fleetFlags) api(method, path string, body any, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, strings.TrimRight(f.cloud, "/")+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+f.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		if method == http.MethodPatch {
			req.Header.Set("Content-Type", "application/merge-patch+json")
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", errUnreachable, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%w: %v", errUnreachable, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Code, Message, ID string }
		if json.Unmarshal(b, &e) != nil || e.Code == "" {
			return fmt.Errorf("%s %s: HTTP %d", method, path, resp.StatusCode)
		}
		if resp.StatusCode >= 500 {
			return fmt.Errorf("%w: %s: %s (request %s)", errUnreachable, e.Code, e.Message, e.ID)
		}
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			return fmt.Errorf("%s: %s; retry after %s s (request %s)", e.Code, e.Message, ra, e.ID)
		}
		return fmt.Errorf("%s: %s (request %s)", e.Code, e.Message, e.ID)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// station mirrors the API's station record (devcloud/fleet.Station) as stationctl needs it.
type station struct {
	ID        string                   `json:"id"`
	Group     string                   `json:"group"`
	Online    bool                     `json:"online"`
	Boot      int64                    `json:"boot"`
	State     string                   `json:"state"`
	Version   string                   `json:"version"`
	LastSeen  time.Time                `json:"last_seen"`
	Desired   *doc                     `json:"desired"`
	Reported  *protocol.ConfigReported `json:"reported"`
	Telemetry *protocol.Telemetry      `json:"telemetry"`
}

type doc struct {
	Version int64           `json:"version"`
	Config  json.RawMessage `json:"config"`
}

func printJSON(out io.Writer, v any) error {
	e := json.NewEncoder(out)
	e.SetIndent("", "  ")
	return e.Encode(v)
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func lsCmd(args []string, out io.Writer) error {
	fs, f := fleetFlagSet("ls")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	var body struct {
		Stations []station `json:"stations"`
	}
	if err := f.api(http.MethodGet, "/v1/fleet/stations", nil, &body); err != nil {
		return err
	}
	if f.json {
		return printJSON(out, body.Stations)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STATION\tGROUP\tONLINE\tSTATE\tVERSION\tPRINTER\tCONFIG\tLAST SEEN")
	for _, s := range body.Stations {
		printer, hash := "-", "-"
		if s.Telemetry != nil && s.Telemetry.PrinterStatus != "" {
			printer = s.Telemetry.PrinterStatus
		}
		if s.Reported != nil {
			hash = short(s.Reported.Hash)
		}
		online := "no"
		if s.Online {
			online = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, orDash(s.Group), online, orDash(s.State), orDash(s.Version), printer, hash, s.LastSeen.Format(time.RFC3339))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func showCmd(args []string, out io.Writer) error {
	fs, f := fleetFlagSet("show")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		return fmt.Errorf("%w: show [flags] STATION", errUsage)
	}
	var s station
	if err := f.api(http.MethodGet, "/v1/fleet/stations/"+fs.Arg(0), nil, &s); err != nil {
		return err
	}
	if f.json {
		return printJSON(out, s)
	}
	fmt.Fprintf(out, "station   %s\ngroup     %s\nonline    %v (boot %d)\nstate     %s\nversion   %s\nlast seen %s\n",
		s.ID, orDash(s.Group), s.Online, s.Boot, orDash(s.State), orDash(s.Version), s.LastSeen.Format(time.RFC3339))
	if r := s.Reported; r != nil {
		fmt.Fprintf(out, "config    hash %s, group v%d, station v%d\n", short(r.Hash), r.Versions.Group, r.Versions.Station)
		if !r.Applied && r.Error != "" {
			fmt.Fprintf(out, "refused   %s v%d: %s\n", r.Source, r.Version, r.Error)
		}
		if len(r.RestartRequired) > 0 {
			fmt.Fprintf(out, "restart   required for %s\n", strings.Join(r.RestartRequired, ", "))
		}
	}
	if t := s.Telemetry; t != nil {
		fmt.Fprintf(out, "uptime    %s\nprinter   %s\nlabels    %d\njournal   %d bytes\nmemory    %d bytes\n",
			time.Duration(t.Uptime)*time.Second, orDash(t.PrinterStatus), t.LabelsPrinted, t.JournalBytes, t.RSSBytes)
		if t.LastError != "" {
			fmt.Fprintf(out, "last err  %s\n", t.LastError)
		}
	}
	return nil
}

// target turns ID or group:NAME into its API path.
func target(t string) (path string, group string) {
	if g, ok := strings.CutPrefix(t, "group:"); ok {
		return "/v1/fleet/groups/" + g, g
	}
	return "/v1/fleet/stations/" + t, ""
}

func configCmd(args []string, out io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: config get|set|patch [flags] ID|group:NAME [FILE|-|JSON]", errUsage)
	}
	verb := args[0]
	fs, f := fleetFlagSet("config " + verb)
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() < 1 {
		return fmt.Errorf("%w: config %s [flags] ID|group:NAME", errUsage, verb)
	}
	path, group := target(fs.Arg(0))
	switch verb {
	case "get":
		var d doc
		if err := f.api(http.MethodGet, path+"/config", nil, &d); err != nil {
			return err
		}
		if f.json {
			return printJSON(out, d)
		}
		fmt.Fprintf(out, "version %d\n", d.Version)
		var v any
		json.Unmarshal(d.Config, &v)
		return printJSON(out, v)
	case "set", "patch":
		if fs.NArg() != 2 {
			return fmt.Errorf("%w: config %s [flags] ID|group:NAME FILE|-|JSON", errUsage, verb)
		}
		body, err := readDoc(fs.Arg(1))
		if err != nil {
			return err
		}
		method := http.MethodPut
		if verb == "patch" {
			method = http.MethodPatch
		}
		var d doc
		if err := f.api(method, path+"/config", body, &d); err != nil {
			return err
		}
		return f.waitConfig(out, fs.Arg(0), group, d.Version)
	}
	return fmt.Errorf("%w: config %q: want get, set or patch", errUsage, verb)
}

// readDoc reads a JSON document from a file, stdin ("-") or the argument itself.
func readDoc(arg string) (json.RawMessage, error) {
	var b []byte
	var err error
	switch {
	case arg == "-":
		b, err = io.ReadAll(os.Stdin)
	case strings.HasPrefix(strings.TrimSpace(arg), "{"):
		b = []byte(arg)
	default:
		b, err = os.ReadFile(arg)
	}
	if err != nil {
		return nil, err
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("%w: %s is not JSON", errUsage, arg)
	}
	return b, nil
}

// answer is one station's answer to a desired document.
type answer struct {
	Station string `json:"station"`
	Status  string `json:"status"` // accepted, rejected, waiting, offline
	Error   string `json:"error,omitempty"`
	Path    string `json:"path,omitempty"`
}

func judge(s station, source string, version int64) answer {
	a := answer{Station: s.ID, Status: "waiting"}
	r := s.Reported
	switch {
	case r == nil:
	case source == protocol.SourceStation && r.Versions.Station >= version,
		source == protocol.SourceGroup && r.Versions.Group >= version:
		a.Status = "accepted"
	case r.Source == source && r.Version == version && !r.Applied:
		a.Status, a.Error, a.Path = "rejected", r.Error, r.Path
	}
	if a.Status == "waiting" && !s.Online {
		a.Status = "offline"
	}
	return a
}

// waitConfig polls the stations' reports until every target answered version or the timeout.
func (f *fleetFlags) waitConfig(out io.Writer, tgt, group string, version int64) error {
	deadline := time.Now().Add(f.timeout)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		var answers []answer
		if group != "" {
			var g struct {
				Members []station `json:"members"`
			}
			if err := f.api(http.MethodGet, "/v1/fleet/groups/"+group, nil, &g); err != nil {
				return err
			}
			for _, s := range g.Members {
				answers = append(answers, judge(s, protocol.SourceGroup, version))
			}
		} else {
			var s station
			if err := f.api(http.MethodGet, "/v1/fleet/stations/"+tgt, nil, &s); err != nil {
				return err
			}
			answers = append(answers, judge(s, protocol.SourceStation, version))
		}
		pending := slices.ContainsFunc(answers, func(a answer) bool { return a.Status == "waiting" || a.Status == "offline" })
		if !pending || time.Now().After(deadline) {
			return report(out, f.json, version, answers, pending)
		}
		<-tick.C
	}
}

func report(out io.Writer, asJSON bool, version int64, answers []answer, pending bool) error {
	if asJSON {
		printJSON(out, map[string]any{"version": version, "answers": answers})
	} else {
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "STATION\tVERSION %d\tDETAIL\n", version)
		for _, a := range answers {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", a.Station, a.Status, a.Error)
		}
		tw.Flush()
	}
	if slices.ContainsFunc(answers, func(a answer) bool { return a.Status == "rejected" }) {
		return fmt.Errorf("%w by a station", errRejected)
	}
	if pending {
		return fmt.Errorf("%w: not every station answered", errTimedOut)
	}
	return nil
}

// commandView mirrors devcloud/fleet.Command.
type commandView struct {
	ID      string                            `json:"id"`
	Name    string                            `json:"name"`
	Members []string                          `json:"members"`
	Results map[string]protocol.CommandResult `json:"results"`
}

func final(status string) bool {
	return status != "" && status != protocol.CmdAccepted
}

func cmdCmd(args []string, out io.Writer) error {
	fs, f := fleetFlagSet("cmd")
	ttl := fs.Int("ttl", 0, "seconds the command stays valid (0: the cloud's default of 5 minutes, -1: no expiry)")
	if err := fs.Parse(args); err != nil || fs.NArg() < 2 {
		return fmt.Errorf("%w: cmd [flags] ID|group:NAME COMMAND [KEY=VALUE...]", errUsage)
	}
	path, _ := target(fs.Arg(0))
	kv := map[string]string{}
	for _, a := range fs.Args()[2:] {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return fmt.Errorf("%w: argument %q: want KEY=VALUE", errUsage, a)
		}
		kv[k] = v
	}
	body := map[string]any{"name": fs.Arg(1), "ttl_s": *ttl}
	if len(kv) > 0 {
		body["args"] = kv
	}
	var c commandView
	if err := f.api(http.MethodPost, path+"/commands", body, &c); err != nil {
		return err
	}
	deadline := time.Now().Add(f.timeout)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := f.api(http.MethodGet, "/v1/fleet/commands/"+c.ID, nil, &c); err != nil {
			return err
		}
		done := !slices.ContainsFunc(c.Members, func(m string) bool { return !final(c.Results[m].Status) })
		if done || time.Now().After(deadline) {
			if f.json {
				printJSON(out, c)
			} else {
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintf(tw, "STATION\t%s %s\tDETAIL\n", c.Name, c.ID)
				for _, m := range c.Members {
					r := c.Results[m]
					detail := r.Error
					if detail == "" && len(r.Data) > 0 {
						detail = string(r.Data)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\n", m, orDash(r.Status), detail)
				}
				tw.Flush()
			}
			if slices.ContainsFunc(c.Members, func(m string) bool {
				s := c.Results[m].Status
				return s == protocol.CmdFailed || s == protocol.CmdExpired || s == protocol.CmdUnknown
			}) {
				return fmt.Errorf("%w: the command failed on a station", errRejected)
			}
			if !done {
				return fmt.Errorf("%w: not every station answered", errTimedOut)
			}
			return nil
		}
		<-tick.C
	}
}

func watchCmd(args []string, out io.Writer) error {
	fs, f := fleetFlagSet("watch")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	req, err := http.NewRequest(http.MethodGet, strings.TrimRight(f.cloud, "/")+"/v1/fleet/events", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+f.token)
	stream := &http.Client{} // no timeout: the stream lasts until interrupted
	resp, err := stream.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", errUnreachable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("events: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if f.json {
			fmt.Fprintln(out, data)
			continue
		}
		var e struct {
			Kind, Station, Group string
			Data                 json.RawMessage
		}
		if json.Unmarshal([]byte(data), &e) != nil {
			continue
		}
		who := e.Station
		if who == "" {
			who = "group:" + e.Group
		}
		fmt.Fprintf(out, "%s  %-9s %-20s %s\n", time.Now().Format("15:04:05"), e.Kind, who, e.Data)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: %v", errUnreachable, err)
	}
	return fmt.Errorf("%w: the event stream ended", errUnreachable)
}

// groupCmd puts a station in a group ("" or "-" for none).
func groupCmd(args []string, out io.Writer) error {
	fs, f := fleetFlagSet("group")
	if err := fs.Parse(args); err != nil || fs.NArg() != 2 {
		return fmt.Errorf("%w: group [flags] STATION GROUP|-", errUsage)
	}
	g := fs.Arg(1)
	if g == "-" {
		g = ""
	}
	var d doc
	if err := f.api(http.MethodPut, "/v1/fleet/stations/"+fs.Arg(0)+"/group", map[string]string{"group": g}, &d); err != nil {
		return err
	}
	return f.waitConfig(out, fs.Arg(0), "", d.Version)
}
