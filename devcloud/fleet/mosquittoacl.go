package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"labelstation/internal/supervise"
	"labelstation/protocol"
	"labelstation/provisioning"
)

// ACLOptions configures an ACLFile.
type ACLOptions struct {
	// Path is the acl_file Mosquitto reads; the ACLFile owns it and replaces it whole.
	Path string
	// Template holds the static rules written before the generated sections
	// (deploy/mosquitto/lrs.acl).
	Template []byte
	// Reload makes Mosquitto read the file again (ReloadPID, ReloadCommand); nil writes only.
	Reload func() error
	// Every is the least time between two writes (default 1 s): a burst of membership changes
	// costs one write and one reload.
	Every time.Duration
	// Settle is how long after the reload signal a change counts as in force (default 250 ms):
	// Mosquitto answers nothing to SIGHUP and applies it at its next turn of the event loop,
	// which a busy machine may delay.
	Settle time.Duration
	// Backoff paces the retries of a failed write or reload.
	Backoff supervise.Backoff
	Logger  *slog.Logger
}

// ACLFile keeps a Mosquitto acl_file in step with group membership: Mosquitto cannot ask the
// cloud who belongs to a group, so every station gets a section listing the group topics it may
// read. Changes are written debounced (the latest membership wins), atomically, then Mosquitto
// is told to reload; a failed write or reload is logged and retried until it succeeds.
type ACLFile struct {
	opt ACLOptions
	log *slog.Logger

	mu      sync.Mutex
	members map[string][]string
	gen     uint64 // counts changes
	done    uint64 // the gen the file and the broker hold
	waiters []aclWaiter

	kick   chan struct{}
	stop   chan struct{}
	closed chan struct{}
	once   sync.Once
}

type aclWaiter struct {
	gen uint64
	ch  chan struct{}
}

// NewACLFile writes the file for members (station → groups) and reloads the broker, then keeps
// the file up to date with Set until Close. A file that cannot be written is an error here (a
// wrong path should stop devcloud at start); a failed first reload is retried in the background.
func NewACLFile(opt ACLOptions, members map[string][]string) (*ACLFile, error) {
	if opt.Path == "" {
		return nil, errors.New("fleet: mosquitto ACL: Path is required")
	}
	if opt.Every <= 0 {
		opt.Every = time.Second
	}
	if opt.Settle <= 0 {
		opt.Settle = 250 * time.Millisecond
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	a := &ACLFile{opt: opt, log: opt.Logger, members: map[string][]string{}, kick: make(chan struct{}, 1), stop: make(chan struct{}), closed: make(chan struct{})}
	for st, g := range members {
		if len(g) > 0 {
			a.members[st] = slices.Clone(g)
		}
	}
	a.gen = 1
	b, err := RenderACL(opt.Template, a.members)
	if err != nil {
		return nil, err
	}
	if err := provisioning.WriteFileAtomic(opt.Path, b, 0o644); err != nil {
		return nil, fmt.Errorf("fleet: mosquitto ACL: %w", err)
	}
	if err := a.reload(); err != nil {
		a.log.Error("fleet: mosquitto ACL written, reload failed; retrying", "path", opt.Path, "err", err)
		a.kick <- struct{}{}
	} else {
		a.done = 1
	}
	go a.run()
	return a, nil
}

// Set replaces the groups of a station (none: no section). The returned channel is closed once
// the file with this change (or a later one) is written and the broker told to reload.
func (a *ACLFile) Set(station string, groups ...string) <-chan struct{} {
	ch := make(chan struct{})
	a.mu.Lock()
	groups = slices.DeleteFunc(slices.Clone(groups), func(g string) bool { return g == "" })
	if slices.Equal(a.members[station], groups) && a.done == a.gen {
		a.mu.Unlock()
		close(ch)
		return ch
	}
	if len(groups) == 0 {
		delete(a.members, station)
	} else {
		a.members[station] = groups
	}
	a.gen++
	a.waiters = append(a.waiters, aclWaiter{gen: a.gen, ch: ch})
	a.mu.Unlock()
	select {
	case a.kick <- struct{}{}:
	default:
	}
	return ch
}

// Close stops the writer; a change not written yet stays unwritten (the next start writes the
// whole file from the registry).
func (a *ACLFile) Close() {
	a.once.Do(func() { close(a.stop) })
	<-a.closed
}

func (a *ACLFile) run() {
	defer close(a.closed)
	last := time.Now()
	b := a.opt.Backoff
	for {
		select {
		case <-a.kick:
		case <-a.stop:
			return
		}
		if !a.sleep(time.Until(last.Add(a.opt.Every))) {
			return
		}
		for {
			a.mu.Lock()
			gen, snap := a.gen, maps.Clone(a.members)
			a.mu.Unlock()
			err := supervise.Safe(func() error { return a.flush(snap) })
			last = time.Now()
			if err == nil {
				b.Reset()
				if !a.sleep(a.opt.Settle) {
					return
				}
				a.release(gen)
				break
			}
			d := b.Next()
			supervise.Log(a.log, "fleet: mosquitto ACL not updated; retrying", err, "path", a.opt.Path, "retry_in", d)
			if !a.sleep(d) {
				return
			}
		}
	}
}

// sleep waits d; false when the writer is closed meanwhile.
func (a *ACLFile) sleep(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-a.stop:
		return false
	}
}

func (a *ACLFile) release(gen uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.done = max(a.done, gen)
	kept := a.waiters[:0]
	for _, w := range a.waiters {
		if w.gen <= a.done {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	a.waiters = kept
}

func (a *ACLFile) flush(members map[string][]string) error {
	b, err := RenderACL(a.opt.Template, members)
	if err != nil {
		return err
	}
	if err := provisioning.WriteFileAtomic(a.opt.Path, b, 0o644); err != nil {
		return fmt.Errorf("fleet: mosquitto ACL: %w", err)
	}
	return a.reload()
}

func (a *ACLFile) reload() error {
	if a.opt.Reload == nil {
		return nil
	}
	if err := a.opt.Reload(); err != nil {
		return fmt.Errorf("fleet: mosquitto reload: %w", err)
	}
	return nil
}

// aclHeader separates the static rules from the generated sections.
const aclHeader = "\n# Group membership, written by devcloud from its fleet registry at every change.\n# Do not edit below: the whole file is replaced.\n"

// RenderACL is the acl_file: the template, then one section per station (by id) with the
// topics of each of its groups (by name) it may read. A station id or group name that could
// change the file's meaning (newline, space, '+', '#', '/') is refused.
func RenderACL(template []byte, members map[string][]string) ([]byte, error) {
	var b bytes.Buffer
	b.Write(template)
	if len(template) > 0 && template[len(template)-1] != '\n' {
		b.WriteByte('\n')
	}
	b.WriteString(aclHeader)
	for _, st := range slices.Sorted(maps.Keys(members)) {
		if !protocol.ValidName(st) {
			return nil, fmt.Errorf("fleet: mosquitto ACL: station %q: not a station id", st)
		}
		groups := slices.Sorted(slices.Values(members[st]))
		groups = slices.Compact(groups)
		if len(groups) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\nuser %s\n", st)
		for _, g := range groups {
			if !protocol.ValidName(g) {
				return nil, fmt.Errorf("fleet: mosquitto ACL: station %s: group %q: want 1-64 letters, digits, '-', '_' or '.'", st, g)
			}
			fmt.Fprintf(&b, "topic read %s\ntopic read %s\n", protocol.GroupTopic(g, protocol.LeafConfigDesired), protocol.GroupTopic(g, protocol.LeafCmd))
		}
	}
	return b.Bytes(), nil
}

// ReloadPID sends SIGHUP to the process whose id the file holds (Mosquitto's pid_file), read
// anew each time: a restarted Mosquitto has a new id.
func ReloadPID(file string) func() error {
	return func() error {
		b, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 1 {
			return fmt.Errorf("%s: %q is not a process id", file, strings.TrimSpace(string(b)))
		}
		if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
			return fmt.Errorf("SIGHUP to %d (from %s): %w", pid, file, err)
		}
		return nil
	}
}

// ReloadCommand runs a shell command (e.g. "systemctl reload mosquitto"); a non-zero exit is
// an error with the command's output. It gets 30 s.
func ReloadCommand(cmd string) func() error {
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "/bin/sh", "-c", cmd).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%q: %w: %s", cmd, err, bytes.TrimSpace(out))
		}
		return nil
	}
}
