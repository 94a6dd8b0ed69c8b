package auth_test

import (
	"testing"

	"labelstation/devcloud/auth"
	"labelstation/devcloud/auth/authtest"
)

func TestMemAppStore(t *testing.T) { authtest.AppStore(t, auth.NewMemAppStore(), nil) }
