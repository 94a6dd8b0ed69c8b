// Package mosquitto holds the deployed Mosquitto configuration, so devcloud can write the ACL
// file from the same static rules an operator installs.
package mosquitto

import _ "embed"

// ACL is lrs.acl: the static rules every station and the cloud's services get.
//
//go:embed lrs.acl
var ACL []byte
