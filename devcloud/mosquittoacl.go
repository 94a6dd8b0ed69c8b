package devcloud

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"labelstation/deploy/mosquitto"
	"labelstation/devcloud/fleet"
	"labelstation/protocol"
)

// aclWait bounds how long a membership change waits for Mosquitto's ACL before the station is
// told its group.
const aclWait = 10 * time.Second

// mosquittoACL ties the ACL file to the cloud: membership changes wait for the reload, and a
// station that joined without waiting gets its group's retained config again after it.
type mosquittoACL struct {
	file      *fleet.ACLFile
	log       *slog.Logger
	republish func(group string) error

	mu      sync.Mutex
	pending map[string]<-chan struct{} // group → the reload its config waits for
	stop    chan struct{}
	wg      sync.WaitGroup
}

// startACL writes the Mosquitto ACL for the registry's memberships (those set by SetGroups
// win) and keeps it up to date.
func (c *Cloud) startACL(o fleet.ACLOptions) (*mosquittoACL, error) {
	if o.Template == nil {
		o.Template = mosquitto.ACL
	}
	if o.Logger == nil {
		o.Logger = c.log.With("component", "mosquitto-acl")
	}
	members := map[string][]string{}
	for _, st := range c.Fleet.Stations() {
		if st.Group != "" {
			members[st.ID] = []string{st.Group}
		}
	}
	c.mu.Lock()
	for st, g := range c.groups {
		members[st] = g
	}
	c.mu.Unlock()
	f, err := fleet.NewACLFile(o, members)
	if err != nil {
		return nil, fmt.Errorf("devcloud: %w", err)
	}
	return &mosquittoACL{file: f, log: o.Logger, republish: c.republishGroup, pending: map[string]<-chan struct{}{}, stop: make(chan struct{})}, nil
}

// republishGroup publishes a group's desired document again (retained); members that have it
// ignore the same version.
func (c *Cloud) republishGroup(group string) error {
	d, ok := c.Fleet.GroupDoc(group)
	if !ok {
		return nil
	}
	return c.Jobs.Publish(protocol.GroupTopic(group, protocol.LeafConfigDesired), true,
		protocol.ConfigDesired{V: protocol.Version, Version: d.Version, Config: d.Config})
}

// waitACL puts a station's membership into the ACL and waits until Mosquitto was told to
// reload it, so the station may read its new group when it learns of it.
func (c *Cloud) waitACL(station, group string) {
	if c.acl == nil {
		return
	}
	var done <-chan struct{}
	if group == "" {
		done = c.acl.file.Set(station)
	} else {
		done = c.acl.file.Set(station, group)
	}
	t := time.NewTimer(aclWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		c.log.Warn("devcloud: mosquitto ACL not reloaded yet; the station may miss its group's retained config until the next push", "station", station, "group", group)
	}
}

// joinLater puts a station into a group's section without waiting (the caller holds the
// registry's lock). Mosquitto may have refused it the group's retained config meanwhile, so
// once the reload is done the config is published again: one per group per burst of joins.
func (a *mosquittoACL) joinLater(station, group string) {
	done := a.file.Set(station, group)
	a.mu.Lock()
	_, running := a.pending[group]
	a.pending[group] = done
	a.mu.Unlock()
	if running {
		return
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		for {
			select {
			case <-done:
			case <-a.stop:
				return
			}
			a.mu.Lock()
			if latest := a.pending[group]; latest != done {
				done = latest // a later join: wait for its reload too
				a.mu.Unlock()
				continue
			}
			delete(a.pending, group)
			a.mu.Unlock()
			if err := a.republish(group); err != nil {
				a.log.Error("devcloud: group config not republished after the ACL reload; members get it at the next push", "group", group, "err", err)
			}
			return
		}
	}()
}

func (a *mosquittoACL) Close() {
	close(a.stop)
	a.wg.Wait()
	a.file.Close()
}
