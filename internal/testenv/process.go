package testenv

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/saasgate/saasgate/internal/proc"
)

// BinEnv names the environment variable holding the path of the built gateway binary;
// `make test` sets it. Without it, StartSaasgate uses bin/saasgate at the module root.
const BinEnv = "SAASGATE_BIN"

// Process is a gateway binary running as a subprocess (see StartSaasgate).
type Process struct {
	*proc.Gateway
	out      *syncBuffer
	reported atomic.Bool // the output is already in the test log
}

// StartSaasgate runs the built gateway binary as `saasgate run --config <file> --adapter
// caddyfile` with the given Caddyfile, which should put CaddyGlobal() in its global block and
// listen on FreePort ports. env entries ("KEY=value") are added to the test's environment.
//
// The process runs in a temporary directory of its own (so the default data_dir ./data is
// private to it), with its own XDG data and config directories for Caddy's storage. Its stdout
// and stderr are captured (Output) and logged if the test fails. It is stopped when the test
// ends. Use it where a test needs more than the one in-process Caddy, e.g. two gateway replicas
// sharing Redis; wait for it with p.WaitHTTP.
func StartSaasgate(t testing.TB, caddyfile string, env ...string) *Process {
	t.Helper()
	bin := saasgateBinary(t)
	p := &Process{out: &syncBuffer{}}
	g, err := proc.Start(bin, t.TempDir(), caddyfile, p.out, env...)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	p.Gateway = g
	// Registered after t.TempDir, so it runs before the directory is removed.
	t.Cleanup(func() {
		_ = p.Stop()
		if t.Failed() && !p.reported.Load() {
			t.Logf("saasgate (pid %d) output:\n%s", p.Pid(), p.Output())
		}
	})
	return p
}

// saasgateBinary finds the gateway binary, failing the test if it is not built.
func saasgateBinary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv(BinEnv)
	if bin == "" {
		root, err := moduleRoot()
		if err != nil {
			t.Fatalf("testenv: finding the gateway binary: %v; set %s or run `make build`", err, BinEnv)
		}
		bin = filepath.Join(root, "bin", "saasgate")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("testenv: the gateway binary is missing (%v): run `make build` first "+
			"(`make test` does), or set %s to its path", err, BinEnv)
	}
	return bin
}

// moduleRoot is the nearest directory above the working directory (the test's package
// directory) that holds a go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Output returns what the process has written to stdout and stderr so far.
func (p *Process) Output() string { return p.out.String() }

// WaitHTTP polls url until the gateway answers, for at most 20 s (a cold start of the binary on
// a busy machine). The test fails, with the process output, if it does not answer or exits.
func (p *Process) WaitHTTP(t testing.TB, url string) {
	t.Helper()
	if err := proc.WaitHTTP(url, 20*time.Second, p.Done()); err != nil {
		p.reported.Store(true)
		t.Fatalf("testenv: saasgate (pid %d): %v\noutput:\n%s", p.Pid(), err, p.Output())
	}
}

// syncBuffer is a bytes.Buffer safe for the process's writes and the test's reads at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// SaasgateBinary returns the path of the built gateway binary, failing the test with a hint
// to run `make build` when it is missing.
func SaasgateBinary(t testing.TB) string {
	t.Helper()
	return saasgateBinary(t)
}
