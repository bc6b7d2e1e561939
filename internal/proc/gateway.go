// Package proc runs the built gateway binary as a child process and finds free loopback ports
// for it. The test harness (internal/testenv) and the benchmark (cmd/saasbench) share it, so
// it imports nothing made for tests.
package proc

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// Gateway is the gateway binary running as a child process.
type Gateway struct {
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error // set before done is closed

	stopOnce sync.Once
	stopErr  error
}

// Start runs `bin run --config <dir>/Caddyfile --adapter caddyfile` with caddyfile. The
// process works in dir/work (so the default data_dir ./data is private to it) with its own
// XDG data and config directories under dir for Caddy's storage; dir must not be shared with
// another gateway. Its stdout and stderr go to out; env entries ("KEY=value") are added to
// this process's environment.
func Start(bin, dir, caddyfile string, out io.Writer, env ...string) (*Gateway, error) {
	work, data, config := filepath.Join(dir, "work"), filepath.Join(dir, "xdg-data"), filepath.Join(dir, "xdg-config")
	for _, d := range []string{work, data, config} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	file := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(file, []byte(caddyfile), 0o600); err != nil {
		return nil, fmt.Errorf("writing the Caddyfile: %w", err)
	}
	cmd := exec.Command(bin, "run", "--config", file, "--adapter", "caddyfile")
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+data, "XDG_CONFIG_HOME="+config)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = SysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	g := &Gateway{cmd: cmd, done: make(chan struct{})}
	go func() {
		g.waitErr = cmd.Wait()
		close(g.done)
	}()
	return g, nil
}

// Pid is the process id.
func (g *Gateway) Pid() int { return g.cmd.Process.Pid }

// Done is closed when the process has exited.
func (g *Gateway) Done() <-chan struct{} { return g.done }

// Stop asks the process to shut down gracefully (SIGINT), waits up to 10 s, then kills it. It
// returns the process's exit error: nil after a clean shutdown. Calling it again returns the
// same result.
func (g *Gateway) Stop() error {
	g.stopOnce.Do(func() {
		select {
		case <-g.done:
		default:
			if err := g.cmd.Process.Signal(os.Interrupt); err != nil {
				_ = g.cmd.Process.Kill()
			}
			select {
			case <-g.done:
			case <-time.After(10 * time.Second):
				_ = g.cmd.Process.Kill()
				<-g.done
			}
		}
		g.stopErr = g.waitErr
	})
	return g.stopErr
}

// Kill kills the process at once (a crashed replica) and waits for it to exit.
func (g *Gateway) Kill() {
	_ = g.cmd.Process.Kill()
	<-g.done
}

// WaitHTTP polls url until a server answers with any HTTP response, timeout passes, or exited
// (if not nil) is closed.
func WaitHTTP(url string, timeout time.Duration, exited <-chan struct{}) error {
	tr := &http.Transport{
		DisableKeepAlives: true,
		// Only readiness is checked here; test servers have self-signed certificates if any.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // readiness probe of a local server
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport:     tr,
		Timeout:       time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer within %s: %v", url, timeout, err)
		}
		select {
		case <-exited:
			return fmt.Errorf("the process exited before %s answered: %v", url, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
