package testenv

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/saasgate/saasgate/internal/proc"
)

// StripeMockEnv names the environment variable with the path of the stripe-mock binary;
// by default bin/tools/stripe-mock, which `make test` installs at the pinned version.
const StripeMockEnv = "STRIPE_MOCK_BIN"

// StripeMockKey is a secret key stripe-mock accepts.
const StripeMockKey = "sk_test_123"

var (
	stripeOnce sync.Once
	stripeURL  string
	stripeErr  error
	stripeCmd  *exec.Cmd
	// stripeExited receives the result of the process's Wait.
	stripeExited chan error
)

// StripeMock returns the base URL (http://127.0.0.1:<port>) of a stripe-mock server started on
// first use and shared by the whole test process (Main stops it). It fails the test, with how
// to install it, when the binary is missing.
func StripeMock(t testing.TB) string {
	t.Helper()
	if !mainCalled.Load() {
		t.Fatal("testenv: call testenv.Main from TestMain before using StripeMock")
	}
	stripeOnce.Do(func() { stripeURL, stripeErr = startStripeMock() })
	if stripeErr != nil {
		t.Fatalf("testenv: stripe-mock: %v", stripeErr)
	}
	return stripeURL
}

func startStripeMock() (string, error) {
	bin := os.Getenv(StripeMockEnv)
	if bin == "" {
		root, err := moduleRoot()
		if err != nil {
			return "", err
		}
		bin = filepath.Join(root, "bin", "tools", "stripe-mock")
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("%v: run `make tools` (or `make test`), which installs the pinned stripe-mock, or set %s", err, StripeMockEnv)
	}
	// The free port is found by binding and releasing it, so another process can take it
	// before stripe-mock binds it; stripe-mock then exits, and a fresh port is tried.
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var url string
		if url, err = tryStartStripeMock(bin); err == nil {
			return url, nil
		}
	}
	return "", err
}

func tryStartStripeMock(bin string) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	l.Close()
	// Without -https-addr stripe-mock also binds HTTPS on the fixed :12112, so two test
	// processes (or sessions) at once would collide.
	cmd := exec.Command(bin, "-http-addr", addr, "-https-addr", "127.0.0.1:0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = proc.SysProcAttr()
	if err := cmd.Start(); err != nil {
		return "", err
	}
	stripeCmd, stripeExited = cmd, make(chan error, 1)
	go func() { stripeExited <- cmd.Wait() }()
	url := "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-stripeExited:
			stripeCmd = nil
			return "", fmt.Errorf("stripe-mock exited at start (%v); its output is above", err)
		default:
		}
		if isStripeMock(url) {
			return url, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopStripeMock()
	return "", fmt.Errorf("stripe-mock at %s did not answer within 20 s", addr)
}

// isStripeMock reports whether url answers a customer listing as stripe-mock does (not merely
// 200: another test's server may hold the port).
func isStripeMock(url string) bool {
	req, _ := http.NewRequest("GET", url+"/v1/customers", nil)
	req.Header.Set("Authorization", "Bearer "+StripeMockKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var list struct {
		Object string `json:"object"`
		URL    string `json:"url"`
	}
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&list) == nil &&
		list.Object == "list" && list.URL == "/v1/customers"
}

// stopStripeMock ends the shared stripe-mock, if one was started.
func stopStripeMock() {
	if stripeCmd != nil {
		_ = stripeCmd.Process.Kill()
		<-stripeExited
		stripeCmd = nil
	}
}
