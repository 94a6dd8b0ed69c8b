package station

import (
	"slices"
	"sync"

	"labelstation/protocol"
)

// alarmSet holds the telemetry alarms that hold now. A change wakes the telemetry loop, so the
// fleet hears of a problem when it starts and when it ends, not a period later. The zero value
// is ready to use.
type alarmSet struct {
	mu     sync.Mutex
	on     map[string]bool
	wakeCh chan struct{}
}

// set raises (on) or clears an alarm; it reports whether that changed anything.
func (a *alarmSet) set(name string, on bool) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.on[name] == on {
		return false
	}
	if a.on == nil {
		a.on = map[string]bool{}
	}
	if on {
		a.on[name] = true
	} else {
		delete(a.on, name)
	}
	select {
	case a.wakeLocked() <- struct{}{}:
	default: // a report is due already; it will carry this change
	}
	return true
}

// list returns the alarms that hold, sorted; nil when none.
func (a *alarmSet) list() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var l []string
	for n := range a.on {
		l = append(l, n)
	}
	slices.Sort(l)
	return l
}

// wake receives a value after every change.
func (a *alarmSet) wake() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.wakeLocked()
}

func (a *alarmSet) wakeLocked() chan struct{} {
	if a.wakeCh == nil {
		a.wakeCh = make(chan struct{}, 1)
	}
	return a.wakeCh
}

// storageFull raises or clears the storage alarm, logging the change.
func (s *Station) storageFull(full bool) {
	if !s.alarms.set(protocol.AlarmStorageFull, full) {
		return
	}
	if full {
		s.log.Error("station: storage full: jobs are refused until the journal has room again", "alarm", protocol.AlarmStorageFull)
	} else {
		s.log.Info("station: storage usable again", "alarm", protocol.AlarmStorageFull)
	}
}
