package caddymodule_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The deploy/elk example, run as far as it can be without Elastic: the gateway, with the
// example's `log` block, writes access-log lines, and every field the Logstash pipeline reads is
// on each of them.
const elkDir = "../deploy/elk"

var (
	// pipelineFieldRef is a Logstash field reference: [a] or [a][b]... (pipeline fields made by
	// logstash.conf have bare names, see its header).
	pipelineFieldRef = regexp.MustCompile(`(?:\[[A-Za-z0-9_@.-]+\])+`)
	pipelineInput    = regexp.MustCompile(`path\s*=>\s*"([^"]+)"`)
	snippetOutput    = regexp.MustCompile(`output file (\S+)`)
)

// pipelineFields reads the field references out of a Logstash pipeline, comments skipped, as
// paths into the JSON log line.
func pipelineFields(conf string) [][]string {
	var out [][]string
	seen := map[string]bool{}
	for _, line := range strings.Split(conf, "\n") {
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		for _, ref := range pipelineFieldRef.FindAllString(line, -1) {
			if !seen[ref] {
				seen[ref] = true
				out = append(out, strings.Split(strings.Trim(ref, "[]"), "]["))
			}
		}
	}
	return out
}

func readExample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(elkDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestELKExample_PipelineReadsOnlyFieldsTheGatewayLogs(t *testing.T) {
	conf, snippet := readExample(t, "logstash.conf"), readExample(t, "access-log.caddyfile")
	fields := pipelineFields(conf)
	var names []string
	for _, f := range fields {
		names = append(names, strings.Join(f, "."))
	}
	for _, want := range []string{"ts", "request.method", "request.host", "request.uri", "status", "duration", "tenant", "user_id", "limiter"} {
		if !slices.Contains(names, want) {
			t.Errorf("logstash.conf does not read %s (it reads %v)", want, names)
		}
	}
	out := snippetOutput.FindStringSubmatch(snippet)
	in := pipelineInput.FindStringSubmatch(conf)
	if out == nil || in == nil || out[1] != in[1] {
		t.Fatalf("the snippet writes %v, the pipeline reads %v: want one file", out, in)
	}

	logPath := filepath.Join(t.TempDir(), "access.log")
	g := startGateway(t, gatewayConfig{
		options: "plan free {\n rate 2/1h\n}",
		sites: []gatewaySite{{"gw", strings.Replace(snippet, out[1], logPath, 1) +
			"saas_tenant\nsaas_auth\nsaas_rate_limit\nreverse_proxy UPSTREAM"}},
	})
	acme := g.NewTenant(t, "acme")
	for i, c := range []struct {
		token string
		want  int
	}{{acme.UserAccess, http.StatusOK}, {acme.OwnerAccess, http.StatusOK}, {acme.UserAccess, http.StatusTooManyRequests}} {
		if r := g.get(t, "gw", "acme", c.token); r.Status != c.want {
			t.Fatalf("request %d: %d, want %d", i, r.Status, c.want)
		}
	}

	var lines []map[string]any
	for deadline := time.Now().Add(5 * time.Second); len(lines) < 3 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		lines = readAccessLog(t, logPath)
	}
	if len(lines) != 3 {
		t.Fatalf("%d access log lines, want 3", len(lines))
	}
	for i, line := range lines {
		for _, f := range fields {
			if !hasField(line, f) {
				t.Errorf("line %d lacks [%s], which logstash.conf reads: %v", i, strings.Join(f, "]["), line)
			}
		}
	}
	if got := lines[2]["limiter"]; got != "rate_limited" {
		t.Errorf("the refused request's limiter field is %v, want rate_limited", got)
	}
}

func readAccessLog(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("access log line %q is not JSON: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	return lines
}

// hasField reports whether the JSON object m has a value at path.
func hasField(m map[string]any, path []string) bool {
	var v any = m
	for _, k := range path {
		obj, ok := v.(map[string]any)
		if !ok {
			return false
		}
		if v, ok = obj[k]; !ok {
			return false
		}
	}
	return true
}
