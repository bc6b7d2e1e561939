package clustertest

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/saasgate/saasgate/internal/proc"
)

// redisServer is a redis-server of one test's own, which the test kills and starts again on
// the same port: the shared test Redis must not be disturbed. It keeps nothing on disk
// (--save "", no AOF), so a killed server comes back empty.
type redisServer struct {
	port int
	dir  string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
}

// lookRedisServer fails the test when redis-server is not installed: the outage tests need a
// server they own, and never skip for want of one.
func lookRedisServer(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not on PATH (%v): the Redis outage tests start and kill a server of their own; "+
			"install it (apt-get install redis-server, brew install redis) and run the tests again", err)
	}
	return path
}

// startRedisServer runs redis-server on 127.0.0.1:port and waits until it answers PING. It is
// killed when the test ends.
func startRedisServer(t *testing.T, port int) *redisServer {
	t.Helper()
	s := &redisServer{port: port, dir: t.TempDir()}
	s.start(t)
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("redis-server on port %d output:\n%s", s.port, s.out)
		}
	})
	return s
}

func (s *redisServer) start(t *testing.T) {
	t.Helper()
	s.cmd = exec.Command(lookRedisServer(t),
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--daemonize", "no")
	s.out = &lockedBuffer{}
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	s.cmd.SysProcAttr = proc.SysProcAttr()
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting redis-server on port %d: %v", s.port, err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(s.cmd, s.done)

	c := redis.NewClient(&redis.Options{Addr: s.addr(), DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		select {
		case <-s.done:
			t.Fatalf("redis-server on port %d exited at start: %v\n%s", s.port, err, s.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on port %d does not answer PING after 10 s: %v\n%s", s.port, err, s.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// restart starts the server again on the same port, after kill.
func (s *redisServer) restart(t *testing.T) { s.start(t) }

// kill kills the server at once (SIGKILL: a crash, no goodbye to clients) and waits for it.
func (s *redisServer) kill() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

func (s *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

func (s *redisServer) url() string { return fmt.Sprintf("redis://%s/0", s.addr()) }

// client connects to the server; it survives kills and restarts (it redials), and is closed
// when the test ends.
func (s *redisServer) client(t *testing.T) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.addr()})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// lockedBuffer takes the process's writes and the test's reads at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
