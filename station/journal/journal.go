// Package journal is the station's durable record of every job it claimed, label by label:
//
//   - a job is journaled (Claim) before its message is acknowledged, so a claimed job is never
//     forgotten;
//   - the station records each label the printer accepted (Progress) and after a restart resumes
//     at Entry.Printed. A label accepted but not yet recorded when the station died is printed
//     again: at most the one label in flight per crash, never a lost one;
//   - every change bumps Entry.Seq, and (job id, state, seq) makes status reports idempotent:
//     Unreported is the status outbox, emptied only by the cloud's acknowledgements
//     (MarkReported, or Acknowledge, whose mark rides on the next commit: acks.go);
//   - a redelivered job message (MQTT QoS 1 is at-least-once, MQTT 3.1.1 §4.3.2) finds its entry
//     or, after Prune, its tombstone, and is not restarted; a job the station refused (Reject)
//     is recognised the same way.
//
// The store is bbolt. Every write is one bbolt transaction, and bbolt fsyncs the data and meta
// pages on commit (its DB.NoSync is left false, never set), so a method that returned nil
// survives power loss. The payload lives in its own bucket and is read only by Get and Pending,
// so the per-label write costs the same for a 1-record and a 10,000-record job.
package journal

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"labelstation/protocol"
)

// Sentinel errors; callers branch with errors.Is. They reach callers wrapped as
// "journal: <op> <job id>: <sentinel>: <detail>".
var (
	ErrNotFound   = errors.New("job not found")
	ErrBackwards  = errors.New("progress goes backwards")
	ErrRange      = errors.New("out of range")
	ErrFinished   = errors.New("job already finished")
	ErrState      = errors.New("invalid state")
	ErrIncomplete = errors.New("not every label was printed")
	ErrLocked     = errors.New("database is locked by another process")
	ErrSchema     = errors.New("unsupported database schema")
	// ErrFull means the journal may not grow: the disk is full or Options.MaxSize is reached.
	// The station shows it ("Storage full") and refuses new jobs instead of hanging.
	ErrFull = errors.New("storage full")
)

// Entry is one job's journal record.
type Entry struct {
	Job      protocol.Job // the full payload as received; Layout and Data are dropped when the job finishes
	State    string       // protocol.JobClaimed, JobPrinting, JobPrinted or JobFailed
	Printed  int          // labels the printer has accepted: resume at this index
	Error    string       // why the job failed
	Seq      int          // increases with every state or progress change; JobStatus.Seq
	Reported int          // highest Seq the cloud has acknowledged
	Claimed  time.Time
	Updated  time.Time
	// Pruned is set when only the tombstone is left: Job holds just ID and Labels, and the job
	// must never be printed again.
	Pruned bool

	// Reprinted counts labels sent twice because whether the first copy printed was unknown
	// (inflight.go).
	Reprinted int
	// Held is set while the job waits on the station for its owner (Hold): it is not in Pending.
	Held bool
}

// Finished reports whether the job reached a final state.
func (e Entry) Finished() bool { return finished(e.State) }

func finished(state string) bool { return state == protocol.JobPrinted || state == protocol.JobFailed }

// Status builds the idempotent status report for the entry's current state.
func (e Entry) Status() protocol.JobStatus {
	return protocol.JobStatus{
		V:       protocol.Version,
		Job:     e.Job.ID,
		State:   e.State,
		Printed: e.Printed,
		Total:   e.Job.Labels,
		Seq:     e.Seq,
		Error:   e.Error,
		TS:      e.Updated,

		Reprinted: e.Reprinted,
	}
}

// Options configures Open. The zero value is usable.
type Options struct {
	// Now is the clock; default time.Now. Tests inject one.
	Now func() time.Time
	// Timeout is how long Open waits for the file lock another process holds; default 1s.
	// bbolt's own default (wait forever) would hang a second daemon silently.
	Timeout time.Duration
	// TombstoneTTL is how long Prune keeps a pruned job's tombstone; default 30 days. It should
	// exceed the longest time the cloud may redeliver a job message.
	TombstoneTTL time.Duration
	// MaxSize bounds the journal's data: a Claim whose payload would take it beyond MaxSize
	// bytes fails with ErrFull, so an SD card shared with the OS never fills up; zero means
	// no limit (a full disk still reports ErrFull). Where int has 32 bits it is at most
	// 768 MiB, so bbolt's mapping of the file fits the address space.
	MaxSize int64
	// CompactAbove is how many bytes of free pages Open tolerates before it rewrites the file:
	// bbolt never shrinks its file, so one big finished job would otherwise keep its space
	// forever. Zero means 1 MiB; negative disables compaction.
	CompactAbove int64
	// Committed, if set, runs after every commit is on disk, before the write returns: a
	// benchmark adds a slower storage's sync cost here (an SD card) to see what it does to
	// the tap path and to long jobs.
	Committed func()
	// AckDelay is how long Acknowledge's marks wait in memory for another write to carry them
	// to disk before they get a commit of their own; zero means one second.
	AckDelay time.Duration
}

// Journal is the job journal. Its methods are safe for concurrent use.
type Journal struct {
	db      *bolt.DB
	path    string
	now     func() time.Time
	ttl     time.Duration
	maxSize int64
	// committed is Options.Committed.
	committed func()
	ackDelay  time.Duration
	acks      acks
}

// Buckets. Payloads are kept apart from the small per-job record so a Progress write (one per
// label) does not rewrite the job's data.
var (
	bucketJobs       = []byte("jobs")       // id → record (JSON)
	bucketPayloads   = []byte("payloads")   // id → payload (JSON); deleted when the job finishes
	bucketQueue      = []byte("queue")      // claim order (big-endian uint64) → id, unfinished jobs only
	bucketTombstones = []byte("tombstones") // id → tombstone (JSON)
	bucketMeta       = []byte("meta")
	keySchema        = []byte("schema")
)

const schema = "1"

type record struct {
	JobV     int           `json:"job_v"`
	ID       string        `json:"id"`
	Title    string        `json:"title"`
	User     protocol.User `json:"user"`
	Format   string        `json:"format"`
	Labels   int           `json:"labels"`
	State    string        `json:"state"`
	Printed  int           `json:"printed"`
	Error    string        `json:"error,omitempty"`
	Seq      int           `json:"seq"`
	Reported int           `json:"reported"`
	Claimed  time.Time     `json:"claimed"`
	Updated  time.Time     `json:"updated"`
	Order    uint64        `json:"order"`

	Reprinted int `json:"reprinted,omitempty"`
	// Expires is the job's own expiry (protocol.Job.Expires); Held keeps it out of the print
	// queue until its owner releases it at the station (Hold).
	Expires time.Time `json:"expires,omitzero"`
	Held    bool      `json:"held,omitempty"`
}

type payload struct {
	Layout []byte `json:"layout"`
	Data   []byte `json:"data"`
}

type tombstone struct {
	State    string    `json:"state"`
	Printed  int       `json:"printed"`
	Labels   int       `json:"labels"`
	Seq      int       `json:"seq"`
	Error    string    `json:"error,omitempty"`
	Finished time.Time `json:"finished"`
}

// Open opens or creates the journal file at path (mode 0600) with bbolt's default fsync on
// every commit; the directory must exist. Only one process may hold it open (ErrLocked).
func Open(path string, opt Options) (*Journal, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Timeout <= 0 {
		opt.Timeout = time.Second
	}
	if opt.TombstoneTTL <= 0 {
		opt.TombstoneTTL = 30 * 24 * time.Hour
	}
	if opt.CompactAbove == 0 {
		opt.CompactAbove = 1 << 20
	}
	db, err := openDB(path, opt)
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketJobs, bucketPayloads, bucketQueue, bucketTombstones, bucketMeta, bucketInFlight} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		switch v := meta.Get(keySchema); {
		case v == nil:
			return meta.Put(keySchema, []byte(schema))
		case string(v) != schema:
			return fmt.Errorf("%w: %q, want %q", ErrSchema, v, schema)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("journal: open %s: %w", path, err)
	}
	if opt.AckDelay <= 0 {
		opt.AckDelay = defaultAckDelay
	}
	return &Journal{db: db, path: path, now: opt.Now, ttl: opt.TombstoneTTL, maxSize: mappableHere(opt.MaxSize), committed: opt.Committed, ackDelay: opt.AckDelay}, nil
}

func openDB(path string, opt Options) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opt.Timeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("journal: open %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("journal: open %s: %w", path, err)
	}
	if opt.CompactAbove < 0 || freeBytes(db) <= opt.CompactAbove {
		return db, nil
	}
	// We hold the file lock while the copy is written, so no other process sees a half state;
	// a crash before the rename leaves the old file intact and a stale .compact file that the
	// next compaction overwrites.
	if err := compact(db, path); err != nil {
		db.Close()
		return nil, fmt.Errorf("journal: compact %s: %w", path, err)
	}
	if err := db.Close(); err != nil {
		return nil, fmt.Errorf("journal: compact %s: %w", path, err)
	}
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: opt.Timeout})
	if err != nil {
		return nil, fmt.Errorf("journal: open %s after compaction: %w", path, err)
	}
	return db, nil
}

// freeBytes is the space bbolt holds in free and pending pages.
func freeBytes(db *bolt.DB) int64 {
	st := db.Stats()
	return int64(st.FreePageN+st.PendingPageN) * int64(db.Info().PageSize)
}

// compact copies src into a fresh file and renames it over path.
func compact(src *bolt.DB, path string) error {
	tmp := path + ".compact"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return err
	}
	if err := bolt.Compact(dst, src, 1<<20); err != nil {
		dst.Close()
		os.Remove(tmp)
		return err
	}
	if err := dst.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(path)
}

// syncDir makes the rename durable.
func syncDir(path string) error {
	d, err := os.Open(dirOf(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func dirOf(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if os.IsPathSeparator(path[i]) {
			return path[:i+1]
		}
	}
	return "."
}

// write is db.Update with Options.Committed hooked to the commit; every commit also carries
// the pending acknowledgements (acks.go).
func (j *Journal) write(fn func(*bolt.Tx) error) error {
	return j.db.Update(func(tx *bolt.Tx) error {
		if j.committed != nil {
			tx.OnCommit(j.committed)
		}
		if err := j.applyAcks(tx); err != nil {
			return err
		}
		return fn(tx)
	})
}

// Size is the journal file's size in bytes (telemetry; bounded by MaxSize and compaction).
func (j *Journal) Size() (int64, error) {
	fi, err := os.Stat(j.path)
	if err != nil {
		return 0, fmt.Errorf("journal: size: %w", err)
	}
	return fi.Size(), nil
}

// Close closes the database file.
func (j *Journal) Close() error {
	aerr := j.closeAcks()
	if err := j.db.Close(); err != nil {
		return fmt.Errorf("journal: close: %w", err)
	}
	return aerr
}

// timestamp is the clock's reading as stored: UTC without the monotonic part, so an Entry read
// back after a restart equals the one returned before it.
func (j *Journal) timestamp() time.Time { return j.now().UTC().Round(0) }

// Claim records a newly received job durably, before anything is printed. If the job id is
// already known — journaled or tombstoned — it returns that entry with existed=true and changes
// nothing: a redelivered QoS 1 message must not restart a job.
func (j *Journal) Claim(job protocol.Job) (e Entry, existed bool, err error) {
	e, existed, _, err = j.claim(job, nil)
	return e, existed, err
}

// claim is Claim that, given first, also records that window as in flight in the same commit
// when the job is new and no other job is unfinished (windowed).
func (j *Journal) claim(job protocol.Job, first *InFlight) (e Entry, existed, windowed bool, err error) {
	if job.ID == "" {
		return Entry{}, false, false, wrap("claim", job.ID, fmt.Errorf("%w: job.id is empty", ErrRange))
	}
	if job.Labels < 0 {
		return Entry{}, false, false, wrap("claim", job.ID, fmt.Errorf("%w: job.labels is %d", ErrRange, job.Labels))
	}
	if first != nil && (first.From != 0 || first.To <= 0 || first.To > job.Labels) {
		return Entry{}, false, false, wrap("claim", job.ID, fmt.Errorf("%w: first window [%d, %d) of %d labels", ErrRange, first.From, first.To, job.Labels))
	}
	err = j.write(func(tx *bolt.Tx) error {
		id := []byte(job.ID)
		if old, ok, err := load(tx, id); err != nil || ok {
			e, existed = old, ok
			return err
		}
		queue := tx.Bucket(bucketQueue)
		// Another unfinished job prints first and moves the printer's counter: the window's
		// counter reading would be stale by then.
		idle := first != nil && isEmpty(queue)
		order, err := queue.NextSequence()
		if err != nil {
			return err
		}
		now := j.timestamp()
		r := record{
			JobV: job.V, ID: job.ID, Title: job.Title, User: job.User, Format: job.Format, Labels: job.Labels,
			State: protocol.JobClaimed, Seq: 1, Claimed: now, Updated: now, Order: order, Expires: job.Expires,
		}
		p := payload{Layout: bytes.Clone(job.Layout), Data: bytes.Clone(job.Data)}
		pb, err := json.Marshal(p)
		if err != nil {
			return err
		}
		if j.maxSize > 0 && tx.Size()-freeTx(tx)+int64(len(pb)) > j.maxSize {
			return fmt.Errorf("%w: a %d-byte job does not fit in the journal's %d bytes", ErrFull, len(pb), j.maxSize)
		}
		if err := put(tx.Bucket(bucketJobs), id, r); err != nil {
			return err
		}
		if err := tx.Bucket(bucketPayloads).Put(id, pb); err != nil {
			return err
		}
		if err := queue.Put(orderKey(order), id); err != nil {
			return err
		}
		if idle {
			if err := put(tx.Bucket(bucketInFlight), id, *first); err != nil {
				return err
			}
			windowed = true
		}
		e = entryOf(r, &p)
		return nil
	})
	if err != nil {
		return Entry{}, false, false, wrap("claim", job.ID, full(err))
	}
	return e, existed, windowed, nil
}

func isEmpty(b *bolt.Bucket) bool {
	k, _ := b.Cursor().First()
	return k == nil
}

// freeTx is the free space inside the file, which a new payload reuses before the file grows.
func freeTx(tx *bolt.Tx) int64 {
	st := tx.DB().Stats()
	return int64(st.FreePageN) * int64(tx.DB().Info().PageSize)
}

// full marks a write that failed for lack of space as ErrFull.
func full(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrFull, err)
	}
	return err
}

// Reject records a job the station will not print — its message was undecodable, or Claim
// failed — as failed with reason, without its payload, so the failure is reported to the cloud
// through Unreported like any other status and a redelivery is recognised. A job already known
// is left as it is (existed=true). The record is small, so it usually fits where the payload
// did not.
func (j *Journal) Reject(id, reason string) (e Entry, existed bool, err error) {
	if id == "" {
		return Entry{}, false, wrap("reject", id, fmt.Errorf("%w: job id is empty", ErrRange))
	}
	err = j.write(func(tx *bolt.Tx) error {
		key := []byte(id)
		if old, ok, err := loadRecord(tx, key); err != nil || ok {
			e, existed = old, ok
			return err
		}
		queue := tx.Bucket(bucketQueue)
		order, err := queue.NextSequence()
		if err != nil {
			return err
		}
		now := j.timestamp()
		r := record{JobV: protocol.Version, ID: id, State: protocol.JobFailed, Error: reason, Seq: 1, Claimed: now, Updated: now, Order: order}
		if err := put(tx.Bucket(bucketJobs), key, r); err != nil {
			return err
		}
		e = entryOf(r, nil)
		return nil
	})
	if err != nil {
		return Entry{}, false, wrap("reject", id, full(err))
	}
	return e, existed, nil
}

// Get returns the job's entry, or its tombstone (Pruned) once Prune removed it.
func (j *Journal) Get(id string) (Entry, error) {
	var e Entry
	err := j.db.View(func(tx *bolt.Tx) error {
		var ok bool
		var err error
		e, ok, err = load(tx, []byte(id))
		if err == nil && !ok {
			err = ErrNotFound
		}
		return err
	})
	if err != nil {
		return Entry{}, wrap("get", id, err)
	}
	if !e.Pruned {
		j.withAcks(&e)
	}
	return e, nil
}

// Progress records that the printer accepted labels [0, printed). Call it after the printer
// confirmed each label (or batch), never before: a crash between sending and recording then
// reprints at most the labels in flight, while recording early could lose them. printed must
// not go backwards (ErrBackwards) nor exceed Job.Labels (ErrRange). The state becomes
// JobPrinting; repeating the current value changes nothing. It touches only the job's small
// record, never its payload, so its cost does not depend on the job's size; the returned
// entry has no Layout and Data.
func (j *Journal) Progress(id string, printed int) (Entry, error) {
	e, err := j.progress(id, printed, nil)
	if err != nil {
		return Entry{}, wrap("progress", id, err)
	}
	return e, nil
}

// progress is Progress with also, run in the same transaction, if set.
func (j *Journal) progress(id string, printed int, also func(*bolt.Tx) error) (Entry, error) {
	var e Entry
	err := j.update(id, also, func(r *record) (bool, error) {
		switch {
		case finished(r.State):
			return false, fmt.Errorf("%w (%s)", ErrFinished, r.State)
		case printed < r.Printed:
			return false, fmt.Errorf("%w: %d after %d", ErrBackwards, printed, r.Printed)
		case printed > r.Labels:
			return false, fmt.Errorf("%w: printed %d of %d labels", ErrRange, printed, r.Labels)
		case printed == r.Printed && r.State == protocol.JobPrinting:
			return false, nil
		}
		r.Printed = printed
		r.State = protocol.JobPrinting
		return true, nil
	}, &e)
	return e, err
}

// Finish records the job's final state, JobPrinted (every label accepted, ErrIncomplete
// otherwise) or JobFailed with errMsg, and drops its payload. Finishing again with the same
// state is a no-op; with another state it is ErrFinished.
func (j *Journal) Finish(id string, state string, errMsg string) (Entry, error) {
	if !finished(state) {
		return Entry{}, wrap("finish", id, fmt.Errorf("%w: %q is not %q or %q", ErrState, state, protocol.JobPrinted, protocol.JobFailed))
	}
	var e Entry
	err := j.update(id, nil, func(r *record) (bool, error) {
		switch {
		case r.State == state:
			return false, nil
		case finished(r.State):
			return false, fmt.Errorf("%w (%s)", ErrFinished, r.State)
		case state == protocol.JobPrinted && r.Printed != r.Labels:
			return false, fmt.Errorf("%w: %d of %d", ErrIncomplete, r.Printed, r.Labels)
		}
		r.State = state
		r.Error = errMsg
		return true, nil
	}, &e)
	if err != nil {
		return Entry{}, wrap("finish", id, err)
	}
	return e, nil
}

// update applies change to the job's record in one transaction, and also, if set, once change
// succeeded. When change reports a change, Seq and Updated advance; a finished job loses its
// payload, its queue slot and its in-flight window. e receives the resulting entry without the
// payload: decoding it on every label would make a long job slower with every label.
func (j *Journal) update(id string, also func(*bolt.Tx) error, change func(*record) (bool, error), e *Entry) error {
	return full(j.write(func(tx *bolt.Tx) error {
		key := []byte(id)
		jobs := tx.Bucket(bucketJobs)
		v := jobs.Get(key)
		if v == nil {
			if tx.Bucket(bucketTombstones).Get(key) != nil {
				return fmt.Errorf("%w (pruned)", ErrFinished)
			}
			return ErrNotFound
		}
		var r record
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("corrupt record: %w", err)
		}
		changed, err := change(&r)
		if err != nil {
			return err
		}
		if changed {
			r.Seq++
			r.Updated = j.timestamp()
			if err := put(jobs, key, r); err != nil {
				return err
			}
			if finished(r.State) {
				if err := tx.Bucket(bucketPayloads).Delete(key); err != nil {
					return err
				}
				if err := tx.Bucket(bucketQueue).Delete(orderKey(r.Order)); err != nil {
					return err
				}
				if err := tx.Bucket(bucketInFlight).Delete(key); err != nil {
					return err
				}
			}
		}
		if also != nil {
			if err := also(tx); err != nil {
				return err
			}
		}
		*e = entryOf(r, nil)
		return nil
	}))
}

// Pending returns the unfinished jobs (claimed or printing) that are not held, oldest claim
// first: the print queue, also after a restart.
func (j *Journal) Pending() ([]Entry, error) {
	out, err := j.queued(false)
	if err != nil {
		return nil, fmt.Errorf("journal: pending: %w", err)
	}
	return out, nil
}

// Held returns the unfinished jobs waiting on the station for their owner (Hold), oldest claim
// first, without payloads.
func (j *Journal) Held() ([]Entry, error) {
	out, err := j.queued(true)
	if err != nil {
		return nil, fmt.Errorf("journal: held: %w", err)
	}
	return out, nil
}

// queued lists the queue's held or printable entries; only printable ones carry their payload.
func (j *Journal) queued(held bool) ([]Entry, error) {
	var out []Entry
	err := j.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketQueue).ForEach(func(_, id []byte) error {
			e, ok, err := loadRecord(tx, id)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("queue names %q, which has no record", id)
			}
			if e.Held != held {
				return nil
			}
			if !held {
				if e, _, err = load(tx, id); err != nil {
					return err
				}
			}
			out = append(out, e)
			return nil
		})
	})
	return out, err
}

// Hold keeps an unfinished job out of the print queue (held true) until its owner releases it
// at the station, or puts it back (held false). It changes no reported state, so Seq stays.
func (j *Journal) Hold(id string, held bool) error {
	err := full(j.write(func(tx *bolt.Tx) error {
		key := []byte(id)
		jobs := tx.Bucket(bucketJobs)
		v := jobs.Get(key)
		if v == nil {
			if tx.Bucket(bucketTombstones).Get(key) != nil {
				return fmt.Errorf("%w (pruned)", ErrFinished)
			}
			return ErrNotFound
		}
		var r record
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("corrupt record: %w", err)
		}
		if finished(r.State) {
			return fmt.Errorf("%w (%s)", ErrFinished, r.State)
		}
		if r.Held == held {
			return nil
		}
		r.Held = held
		return put(jobs, key, r)
	}))
	if err != nil {
		return wrap("hold", id, err)
	}
	return nil
}

// Unreported returns the entries whose Seq > Reported, oldest claim first, without payloads: the
// status outbox, which the station sends until the cloud's job service acknowledges each report.
func (j *Journal) Unreported() ([]Entry, error) {
	type item struct {
		e     Entry
		order uint64
	}
	var items []item
	err := j.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketJobs).ForEach(func(id, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("job %q: corrupt record: %w", id, err)
			}
			if r.Seq <= max(r.Reported, j.acknowledged(r.ID)) {
				return nil
			}
			items = append(items, item{entryOf(r, nil), r.Order})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("journal: unreported: %w", err)
	}
	slices.SortFunc(items, func(a, b item) int { return cmp.Compare(a.order, b.order) })
	out := make([]Entry, len(items))
	for i, it := range items {
		out[i] = it.e
	}
	return out, nil
}

// MarkReported records that the cloud's job service acknowledged the status report with this
// seq (its job/status/ack message; a broker's PUBACK is not delivery). It never lowers Reported, so acknowledgements arriving out of order are
// harmless; a seq never issued is ErrRange.
func (j *Journal) MarkReported(id string, seq int) error {
	err := j.write(func(tx *bolt.Tx) error {
		key := []byte(id)
		jobs := tx.Bucket(bucketJobs)
		v := jobs.Get(key)
		if v == nil {
			t, ok, err := getTombstone(tx, key)
			switch {
			case err != nil:
				return err
			case !ok:
				return ErrNotFound
			case seq > t.Seq:
				return fmt.Errorf("%w: seq %d was never issued (latest %d)", ErrRange, seq, t.Seq)
			}
			return nil // a tombstone is fully reported by construction
		}
		var r record
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("corrupt record: %w", err)
		}
		if seq > r.Seq {
			return fmt.Errorf("%w: seq %d was never issued (latest %d)", ErrRange, seq, r.Seq)
		}
		if seq <= r.Reported {
			return nil
		}
		r.Reported = seq
		return put(jobs, key, r)
	})
	if err != nil {
		return wrap("mark reported", id, err)
	}
	return nil
}

// Prune replaces finished entries last updated before olderThan by tombstones (id, state, seq,
// finished time) so that a late redelivery is still recognised and never reprinted, and drops
// tombstones older than Options.TombstoneTTL. Entries whose final status the cloud has not
// acknowledged yet are kept, so Unreported still finds them. It returns how many entries became
// tombstones.
func (j *Journal) Prune(olderThan time.Time) (int, error) {
	expired := j.timestamp().Add(-j.ttl)
	n := 0
	err := j.write(func(tx *bolt.Tx) error {
		jobs, tombs := tx.Bucket(bucketJobs), tx.Bucket(bucketTombstones)
		var prune [][]byte
		stones := map[string]tombstone{}
		err := jobs.ForEach(func(id, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("job %q: corrupt record: %w", id, err)
			}
			if finished(r.State) && r.Updated.Before(olderThan) && r.Reported >= r.Seq {
				prune = append(prune, bytes.Clone(id))
				stones[string(id)] = tombstone{State: r.State, Printed: r.Printed, Labels: r.Labels, Seq: r.Seq, Error: r.Error, Finished: r.Updated}
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, id := range prune {
			if err := jobs.Delete(id); err != nil {
				return err
			}
			if err := put(tombs, id, stones[string(id)]); err != nil {
				return err
			}
		}
		n = len(prune)
		var old [][]byte
		err = tombs.ForEach(func(id, v []byte) error {
			var t tombstone
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("tombstone %q: %w", id, err)
			}
			if t.Finished.Before(expired) {
				old = append(old, bytes.Clone(id))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, id := range old {
			if err := tombs.Delete(id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("journal: prune: %w", err)
	}
	return n, nil
}

// load reads a job's entry with its payload, or its tombstone.
func load(tx *bolt.Tx, id []byte) (Entry, bool, error) {
	if v := tx.Bucket(bucketJobs).Get(id); v != nil {
		var r record
		if err := json.Unmarshal(v, &r); err != nil {
			return Entry{}, false, fmt.Errorf("corrupt record: %w", err)
		}
		p, err := payloadOf(tx, id)
		if err != nil {
			return Entry{}, false, err
		}
		return entryOf(r, p), true, nil
	}
	t, ok, err := getTombstone(tx, id)
	if err != nil || !ok {
		return Entry{}, false, err
	}
	return Entry{
		Job:      protocol.Job{ID: string(id), Labels: t.Labels},
		State:    t.State,
		Printed:  t.Printed,
		Error:    t.Error,
		Seq:      t.Seq,
		Reported: t.Seq,
		Updated:  t.Finished,
		Pruned:   true,
	}, true, nil
}

// loadRecord is load without the payload.
func loadRecord(tx *bolt.Tx, id []byte) (Entry, bool, error) {
	if v := tx.Bucket(bucketJobs).Get(id); v != nil {
		var r record
		if err := json.Unmarshal(v, &r); err != nil {
			return Entry{}, false, fmt.Errorf("corrupt record: %w", err)
		}
		return entryOf(r, nil), true, nil
	}
	if tx.Bucket(bucketTombstones).Get(id) != nil {
		return load(tx, id)
	}
	return Entry{}, false, nil
}

func getTombstone(tx *bolt.Tx, id []byte) (tombstone, bool, error) {
	v := tx.Bucket(bucketTombstones).Get(id)
	if v == nil {
		return tombstone{}, false, nil
	}
	var t tombstone
	if err := json.Unmarshal(v, &t); err != nil {
		return tombstone{}, false, fmt.Errorf("corrupt tombstone: %w", err)
	}
	return t, true, nil
}

// payloadOf returns the job's payload, nil once the job finished.
func payloadOf(tx *bolt.Tx, id []byte) (*payload, error) {
	v := tx.Bucket(bucketPayloads).Get(id)
	if v == nil {
		return nil, nil
	}
	var p payload
	if err := json.Unmarshal(v, &p); err != nil {
		return nil, fmt.Errorf("corrupt payload: %w", err)
	}
	return &p, nil
}

func entryOf(r record, p *payload) Entry {
	e := Entry{
		Job: protocol.Job{
			V: r.JobV, ID: r.ID, Title: r.Title, User: r.User, Format: r.Format, Labels: r.Labels,
			Expires: r.Expires,
		},
		Held:     r.Held,
		State:    r.State,
		Printed:  r.Printed,
		Error:    r.Error,
		Seq:      r.Seq,
		Reported: r.Reported,
		Claimed:  r.Claimed,
		Updated:  r.Updated,

		Reprinted: r.Reprinted,
	}
	if p != nil {
		e.Job.Layout = json.RawMessage(p.Layout)
		e.Job.Data = p.Data
	}
	return e
}

func put(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

// orderKey is big-endian so the queue bucket's byte order is claim order.
func orderKey(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

func wrap(op, id string, err error) error {
	return fmt.Errorf("journal: %s %q: %w", op, id, err)
}
