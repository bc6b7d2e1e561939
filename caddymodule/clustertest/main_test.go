// Package clustertest runs several saasgate gateways at once, each the built bin/saasgate as a
// subprocess on its own ports, all on one MongoDB database and one Redis, and checks what a
// fleet of replicas promises: one shared rate limit, tenant changes reaching every replica
// within a second, and a limiter that degrades as on_limiter_error says when Redis dies and
// recovers when it comes back.
//
// Run `make build` first: the tests start bin/saasgate (or $SAASGATE_BIN).
package clustertest

import (
	"testing"

	"github.com/saasgate/saasgate/internal/testenv"
)

// TestMain stops the process-wide embedded FerretDB, which the gateway subprocesses share
// through its mongodb:// URI, when the tests end.
func TestMain(m *testing.M) { testenv.Main(m) }
