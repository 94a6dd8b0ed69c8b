// Package protocol defines the MQTT topic tree and the message shapes shared by stations and the
// cloud. docs/protocol.md is the prose version of this file; every message carries "v".
package protocol

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Version is the message schema version written in every message's "v" field. Version 2 seals
// every cloud → station message (seal.go); a v1 station's requests are refused by a v2 cloud,
// so nothing is released to a station that could not verify it.
const Version = 2

// Root prefixes every topic; the version in the path lets a v2 tree live beside v1 on one broker.
const Root = "lrs/v1"

// Leaves under a station's own subtree, lrs/v1/st/{station}/{leaf}.
const (
	LeafPresence       = "presence"        // station → retained, last will
	LeafLookup         = "lookup"          // station → cloud
	LeafLookupReply    = "lookup/reply"    // cloud → station
	LeafRelease        = "release"         // station → cloud
	LeafReleaseReply   = "release/reply"   // cloud → station
	LeafJob            = "job"             // cloud → station, QoS 1
	LeafJobStatus      = "job/status"      // station → cloud, QoS 1
	LeafJobStatusAck   = "job/status/ack"  // cloud → station, QoS 1: the job service stored a status
	LeafConfigDesired  = "config/desired"  // cloud → station, retained
	LeafConfigReported = "config/reported" // station → retained
	LeafCmd            = "cmd"             // cloud → station
	LeafCmdResult      = "cmd/result"      // station → cloud
	LeafTelemetry      = "telemetry"       // station → cloud
	LeafEvent          = "event"           // station → cloud: refused messages and other notices
)

// StationTopic returns lrs/v1/st/{station}/{leaf}.
func StationTopic(station, leaf string) string {
	return Root + "/st/" + station + "/" + leaf
}

// StationFilter is the filter a station subscribes to for everything addressed to it.
func StationFilter(station string) string { return Root + "/st/" + station + "/#" }

// GroupTopic returns lrs/v1/grp/{group}/{leaf}, for config and commands sent to a group.
func GroupTopic(group, leaf string) string { return Root + "/grp/" + group + "/" + leaf }

// AllStations returns the filter the cloud subscribes to for one leaf of every station.
func AllStations(leaf string) string { return Root + "/st/+/" + leaf }

// ErrTopic is returned by ParseStationTopic for a topic outside the station tree.
var ErrTopic = errors.New("protocol: not a station topic")

// ParseStationTopic splits lrs/v1/st/{station}/{leaf...} into station and leaf.
func ParseStationTopic(topic string) (station, leaf string, err error) {
	rest, ok := strings.CutPrefix(topic, Root+"/st/")
	if !ok {
		return "", "", fmt.Errorf("%w: %q", ErrTopic, topic)
	}
	station, leaf, ok = strings.Cut(rest, "/")
	if !ok || station == "" || leaf == "" {
		return "", "", fmt.Errorf("%w: %q", ErrTopic, topic)
	}
	return station, leaf, nil
}

// BadgeHash is the keyed hash (HMAC-SHA256, hex) of a formatted card number. Badges cross the
// network only in this form, so a broker log or a captured message never shows a card number.
func BadgeHash(key []byte, cardNumber string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(cardNumber))
	return hex.EncodeToString(m.Sum(nil))
}

// Presence is retained on lrs/v1/st/{id}/presence; the broker publishes the last will
// (Online=false) when the station vanishes without a goodbye.
type Presence struct {
	V       int    `json:"v"`
	Station string `json:"station"`
	Online  bool   `json:"online"`
	State   string `json:"state,omitempty"`
	Version string `json:"version,omitempty"`
	// Boot counts the station's starts (persisted on the station). The will carries it too, so
	// the cloud ignores a will or presence older than the newest boot it has seen: a will the
	// broker publishes late, after the station rebooted, cannot mark it offline.
	Boot int64     `json:"boot,omitempty"`
	TS   time.Time `json:"ts,omitzero"`
}

// LookupRequest asks for the held jobs of the badge's owner.
type LookupRequest struct {
	V     int    `json:"v"`
	Req   string `json:"req"`
	Badge string `json:"badge"`
}

// JobSummary is one held job as listed on the station's screen.
type JobSummary struct {
	ID     string `json:"id"`
	Title  string `json:"title"`
	Labels int    `json:"labels"`
	// Submitted and Expires let the station show a job's age and the time it has left; a held
	// job is never printed after Expires. Zero when the cloud does not say.
	Submitted time.Time `json:"submitted,omitzero"`
	Expires   time.Time `json:"expires,omitzero"`
}

// User identifies the badge's owner.
type User struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Error codes in replies; stations branch on Code, show Message.
const (
	CodeUnknownBadge = "unknown_badge"
	CodeBadRequest   = "bad_request"
	CodeNotFound     = "not_found"
	CodeInternal     = "internal"
)

// Error is the error part of a reply.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return "protocol: " + e.Code + ": " + e.Message }

// LookupReply answers a LookupRequest with the same Req.
type LookupReply struct {
	V     int          `json:"v"`
	Req   string       `json:"req"`
	User  *User        `json:"user,omitempty"`
	Jobs  []JobSummary `json:"jobs"`
	Error *Error       `json:"error,omitempty"`
}

// ReleaseRequest releases the listed held jobs of the badge's owner to this station. With All
// (and no Jobs) it is a lookup and a release in one round trip: every held job of the owner is
// released, and the reply names the owner and the jobs as a LookupReply would. A cloud that
// predates All ignores it and releases nothing; its reply then has no User (see ReleaseReply).
type ReleaseRequest struct {
	V     int      `json:"v"`
	Req   string   `json:"req"`
	Badge string   `json:"badge"`
	Jobs  []string `json:"jobs"`
	All   bool     `json:"all,omitempty"`
}

// ReleaseReply lists the jobs the cloud is now sending on the job topic. User and Jobs answer a
// request with All: the badge's owner and the released jobs' summaries. Released is the same
// list of ids, so a station reads either form alike.
type ReleaseReply struct {
	V        int          `json:"v"`
	Req      string       `json:"req"`
	Released []string     `json:"released"`
	User     *User        `json:"user,omitempty"`
	Jobs     []JobSummary `json:"jobs,omitempty"`
	Error    *Error       `json:"error,omitempty"`
}

// ReleasedAll reports whether r answers a request with All as a cloud that knows the form does:
// an error, or the badge's owner. A cloud that predates All answers it as an empty release,
// without an owner; a station then asks again in two steps (lookup, then release).
func (r ReleaseReply) ReleasedAll() bool {
	return r.Error != nil && r.Error.Code != CodeBadRequest || r.Error == nil && r.User != nil
}

// Job is a released job, delivered with QoS 1 on lrs/v1/st/{id}/job. The layout travels with the
// job so a station prints without a second round trip; Data is the submitted document as is.
type Job struct {
	V      int             `json:"v"`
	ID     string          `json:"id"`
	Title  string          `json:"title"`
	User   User            `json:"user"`
	Layout json.RawMessage `json:"layout"`
	Format string          `json:"format"` // csv, json, xml, xlsx
	Data   []byte          `json:"data"`   // base64 in JSON
	Labels int             `json:"labels"` // total labels (records × copies), counted at submit
	// Expires is when the held job lapses; a station does not start printing it after that.
	Expires time.Time `json:"expires,omitzero"`
}

// Job states reported on job/status.
const (
	JobClaimed  = "claimed"  // journaled on the station; the cloud no longer offers it to others
	JobPrinting = "printing" // Printed of Total handed to the printer
	JobPrinted  = "printed"  // every label accepted by the printer
	JobFailed   = "failed"   // cannot be printed; Error says why
)

// JobStatus is idempotent: (Job, State, Seq) identifies a report and repeats are harmless.
type JobStatus struct {
	V       int       `json:"v"`
	Job     string    `json:"job"`
	State   string    `json:"state"`
	Printed int       `json:"printed"`
	Total   int       `json:"total"`
	Seq     int       `json:"seq"`
	Error   string    `json:"error,omitempty"`
	TS      time.Time `json:"ts,omitzero"`
	// Reprinted counts labels sent to the printer a second time because the
	// station could not tell whether the first copy printed (a crash or a
	// dropped connection mid-label on a printer without a label counter).
	Reprinted int `json:"reprinted,omitempty"`
}

// JobStatusAck is the job service's answer to a JobStatus, published after it stored the status
// (or found it already stored): only this makes a status delivered for the station, which
// resends it until then. A broker's PUBACK only says the broker took the message. Error is set
// when the cloud refused the status for good (unknown job, another station's job): the station
// stops resending it.
type JobStatusAck struct {
	V     int    `json:"v"`
	Job   string `json:"job"`
	State string `json:"state"`
	Seq   int    `json:"seq"`
	Error string `json:"error,omitempty"`
}

// MessageID reads the "id" (job, command) or "version" (config) of a message that did not
// decode, so the refusal can be reported against it; "" when even that is unreadable.
func MessageID(b []byte) string {
	var head struct {
		ID      json.RawMessage `json:"id"`
		Version json.RawMessage `json:"version"`
	}
	if json.Unmarshal(b, &head) != nil {
		return ""
	}
	for _, raw := range []json.RawMessage{head.ID, head.Version} {
		if s := ""; json.Unmarshal(raw, &s) == nil && s != "" && len(s) <= 200 {
			return s
		}
	}
	// A config version is an integer; an id never is.
	if n := json.Number(""); json.Unmarshal(head.Version, &n) == nil && n != "" && len(n) <= 20 {
		return n.String()
	}
	return ""
}

// ErrTooManyLabels is returned by CheckLabel when the data yields more labels than the job
// announced: printing on would put labels on paper that the cloud never counted.
var ErrTooManyLabels = errors.New("protocol: the data yields more labels than the job's label count")

// CheckLabel is called with the 1-based number of a label about to be printed; it fails before
// the first label beyond job.Labels.
func (j Job) CheckLabel(n int) error {
	if n > j.Labels {
		return fmt.Errorf("%w (label %d of %d)", ErrTooManyLabels, n, j.Labels)
	}
	return nil
}

// Config sources, in the order they are merged over the station's defaults and local file: a
// station's own document wins over its group's.
const (
	SourceGroup   = "group"
	SourceStation = "station"
)

// ConfigDesired is one source's fleet config (retained on lrs/v1/st/{id}/config/desired for the
// station's own, lrs/v1/grp/{group}/config/desired for its group's). Config is the document
// defined by the station's config loader (station/config), kept raw so it is validated in one
// place. Version increases with every change of that source; a station ignores a document whose
// version is not above the one it applied, so duplicates and reordered deliveries are harmless.
type ConfigDesired struct {
	V       int             `json:"v"`
	Version int64           `json:"version"`
	Config  json.RawMessage `json:"config"`
	// Group, on a station's own document only, names the group the station belongs to; the
	// station then follows that group's config and commands. Empty: no group.
	Group string `json:"group,omitempty"`
}

// ConfigVersions are the versions a station applied, per source (0: none).
type ConfigVersions struct {
	Group   int64 `json:"group"`
	Station int64 `json:"station"`
}

// ConfigReported (retained) says what the station runs and answers the newest desired document:
// Source and Version name that document, Applied says whether it was taken, Error and Path say
// why not. Versions, Hash and Group describe the effective config whatever the answer.
type ConfigReported struct {
	V        int            `json:"v"`
	Source   string         `json:"source,omitempty"`
	Version  int64          `json:"version"`
	Applied  bool           `json:"applied"`
	Error    string         `json:"error,omitempty"`
	Path     string         `json:"path,omitempty"`
	Versions ConfigVersions `json:"versions"`
	Group    string         `json:"group,omitempty"`
	// Hash is the SHA-256 (hex) of the effective fleet settings, equal on two stations exactly
	// when they run the same fleet config.
	Hash string `json:"hash,omitempty"`
	// RestartRequired lists the fields whose new value takes effect at the next start.
	RestartRequired []string  `json:"restart_required,omitempty"`
	TS              time.Time `json:"ts,omitzero"`
}

// Command names.
const (
	CmdReboot       = "reboot"
	CmdReenroll     = "reenroll"
	CmdTestPrint    = "test_print"
	CmdPrintPairing = "print_pairing"
	CmdIdentify     = "identify"
	CmdPing         = "ping"
	CmdLogLevel     = "log_level"
)

// Commands lists every command a station knows.
var Commands = []string{CmdReboot, CmdReenroll, CmdTestPrint, CmdPrintPairing, CmdIdentify, CmdPing, CmdLogLevel}

// Command is a fleet command on lrs/v1/st/{id}/cmd or lrs/v1/grp/{group}/cmd (every member runs
// it). ID is unique per command: a station runs an id once, across restarts. A command past
// Expires is not run; a station whose clock is not set runs no command that has an expiry.
type Command struct {
	V       int             `json:"v"`
	ID      string          `json:"id"`
	Name    string          `json:"name"`
	Args    json.RawMessage `json:"args,omitempty"`
	Expires time.Time       `json:"expires,omitzero"`
}

// Command result states.
const (
	CmdAccepted  = "accepted"  // taken; done or failed follows
	CmdDone      = "done"      // finished
	CmdFailed    = "failed"    // could not be done; Error says why
	CmdExpired   = "expired"   // arrived after Expires (or while the station's clock was not set)
	CmdDuplicate = "duplicate" // this id was seen before; not run again
	CmdUnknown   = "unknown"   // the station does not know this command
)

// CommandResult answers a Command with the same ID, once per state reached.
type CommandResult struct {
	V       int             `json:"v"`
	ID      string          `json:"id"`
	Station string          `json:"station,omitempty"`
	Status  string          `json:"status,omitempty"`
	OK      bool            `json:"ok"`
	Error   string          `json:"error,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
	TS      time.Time       `json:"ts,omitzero"`
}

// Telemetry is a periodic health report on lrs/v1/st/{id}/telemetry.
type Telemetry struct {
	V             int       `json:"v"`
	State         string    `json:"state"`
	Uptime        int64     `json:"uptime_s"`
	Boot          int64     `json:"boot,omitempty"`
	PrinterStatus string    `json:"printer_status,omitempty"`
	LabelsPrinted int64     `json:"labels_printed"`
	JobsPrinted   int64     `json:"jobs_printed"`
	LastError     string    `json:"last_error,omitempty"`
	JournalBytes  int64     `json:"journal_bytes"`
	RSSBytes      int64     `json:"rss_bytes,omitempty"`
	Version       string    `json:"version,omitempty"`
	ConfigHash    string    `json:"config_hash,omitempty"`
	TS            time.Time `json:"ts,omitzero"`
	// Alarms are the conditions needing a person that hold now (AlarmStorageFull, …); none
	// when empty. A report goes out at once when one starts or ends, not only every period.
	Alarms []string `json:"alarms,omitempty"`
}

// Telemetry alarms.
const (
	// AlarmStorageFull: the journal refused a job for lack of space (the disk is full or the
	// journal at its size limit); it ends when the journal accepts a job again.
	AlarmStorageFull = "storage_full"
)

// Event kinds.
const (
	EventRefused = "refused" // a cloud → station message failed verification and was dropped
)

// Event tells the fleet manager about something a station did not act on. It never changes a
// job's state: a forged message naming a real job must not be able to fail it.
type Event struct {
	V      int       `json:"v"`
	Kind   string    `json:"kind"`
	Leaf   string    `json:"leaf,omitempty"`   // the leaf the refused message came on
	Topic  string    `json:"topic,omitempty"`  // its full topic (a group topic, say)
	ID     string    `json:"id,omitempty"`     // job id, command id or config version it claimed (unverified)
	Reason string    `json:"reason,omitempty"` // protocol.Reason code
	Error  string    `json:"error,omitempty"`
	TS     time.Time `json:"ts,omitzero"`
}

// ErrGroupTopic is returned by ParseGroupTopic for a topic outside the group tree.
var ErrGroupTopic = errors.New("protocol: not a group topic")

// ParseGroupTopic splits lrs/v1/grp/{group}/{leaf...} into group and leaf.
func ParseGroupTopic(topic string) (group, leaf string, err error) {
	rest, ok := strings.CutPrefix(topic, Root+"/grp/")
	if !ok {
		return "", "", fmt.Errorf("%w: %q", ErrGroupTopic, topic)
	}
	group, leaf, ok = strings.Cut(rest, "/")
	if !ok || group == "" || leaf == "" {
		return "", "", fmt.Errorf("%w: %q", ErrGroupTopic, topic)
	}
	return group, leaf, nil
}

// GroupTopics are the topics a member subscribes to for its group's config and commands; each
// by name, as the broker's ACL lets a station read exactly these two.
func GroupTopics(group string) []string {
	return []string{GroupTopic(group, LeafConfigDesired), GroupTopic(group, LeafCmd)}
}

// ValidName reports whether s can be a station or group name in a topic: 1-64 characters of
// letters, digits, '-', '_' and '.', so no MQTT wildcard or level separator can sneak in.
func ValidName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// ErrVersion is returned by Decode for a message of another schema version.
var ErrVersion = errors.New("protocol: unsupported message version")

// Decode unmarshals a message and checks its "v" field.
func Decode(b []byte, v any) error {
	var head struct {
		V *int `json:"v"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return fmt.Errorf("protocol: decode: %w", err)
	}
	if head.V == nil {
		return fmt.Errorf("%w: missing \"v\"", ErrVersion)
	}
	if *head.V != Version {
		return fmt.Errorf("%w: v=%d, want %d", ErrVersion, *head.V, Version)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("protocol: decode: %w", err)
	}
	return nil
}
