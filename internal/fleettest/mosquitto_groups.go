package fleettest

import (
	"fmt"
	"strings"
	"testing"

	"labelstation/protocol"
)

// MosquittoWithGroups is Mosquitto as Mosquitto starts it, with every station's group section
// in the ACL file from the start: many stations without a reload each. It also serves
// benchmarks.
func MosquittoWithGroups(tb testing.TB, groupOf map[string]string) Broker {
	tb.Helper()
	var acl strings.Builder
	for station, group := range groupOf {
		acl.WriteString(groupACL(station, group))
	}
	return mosquitto(tb, acl.String())
}

// groupACL is the ACL section that lets a station read its group's topics, as the cloud writes it.
func groupACL(station, group string) string {
	return fmt.Sprintf("\nuser %s\ntopic read %s\ntopic read %s\n", station,
		protocol.GroupTopic(group, protocol.LeafConfigDesired), protocol.GroupTopic(group, protocol.LeafCmd))
}

// MosquittoCloudACL is Mosquitto whose ACL file devcloud keeps (StartCloudOn sets it up):
// group membership reaches the broker with no test help.
func MosquittoCloudACL(t *testing.T) Broker {
	t.Helper()
	b := mosquitto(t, "")
	b.Grant, b.CloudACL = nil, true
	return b
}
