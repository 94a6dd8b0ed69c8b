package devcloud

import (
	"fmt"
	"time"

	"labelstation/deploy/mosquitto"
	"labelstation/devcloud/fleet"
)

// aclWait bounds how long a membership change waits for Mosquitto's ACL before the station is
// told its group; past it the station's subscription may be refused once and is retried.
const aclWait = 10 * time.Second

// startACL writes the Mosquitto ACL for the registry's memberships (those set since, by
// SetGroups, win) and keeps it up to date.
func (c *Cloud) startACL(o fleet.ACLOptions) (*fleet.ACLFile, error) {
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
	a, err := fleet.NewACLFile(o, members)
	if err != nil {
		return nil, fmt.Errorf("devcloud: %w", err)
	}
	return a, nil
}

// waitACL puts a station's membership into the Mosquitto ACL and waits until the broker was
// told to reload it, so the station may read its new group when it learns of it.
func (c *Cloud) waitACL(station, group string) {
	if c.acl == nil {
		return
	}
	var done <-chan struct{}
	if group == "" {
		done = c.acl.Set(station)
	} else {
		done = c.acl.Set(station, group)
	}
	t := time.NewTimer(aclWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		c.log.Warn("devcloud: mosquitto ACL not reloaded yet; the station may be refused its group for a while", "station", station, "group", group)
	}
}
