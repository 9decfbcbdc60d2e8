package deploy_test

import (
	"testing"

	"github.com/classroute/classroute/cmd/cmdtest"
)

// TestMain removes the binaries the cluster, fault and flag tests built.
func TestMain(m *testing.M) { cmdtest.Main(m) }
