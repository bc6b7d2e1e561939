package caddymodule_test

import (
	"testing"

	"github.com/saasgate/saasgate/internal/testenv"
)

// TestMain stops the process-wide embedded FerretDB (started by testenv.Mongo) when the tests
// end. It serves both test packages of this directory: they are linked into one binary.
func TestMain(m *testing.M) { testenv.Main(m) }
