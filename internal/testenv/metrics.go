package testenv

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Metrics is one scrape of a Prometheus text exposition (Caddy's `metrics` handler).
type Metrics []Sample

// Sample is one sample line.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
	// Series is the line's name and labels as exposed, e.g.
	// `saasgate_limiter_decisions_total{plan="free",result="allowed"}`.
	Series string
}

var (
	metricSample = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)`)
	metricLabel  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)
)

// Scrape GETs path (e.g. "/metrics") from c and parses it, failing the test unless it answers
// 200 with the text format.
func Scrape(t testing.TB, c *Client, path string) Metrics {
	t.Helper()
	r := c.Do(t, http.MethodGet, path, "", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET %s%s: %d %s", c.Base, path, r.Status, r.Raw)
	}
	m, err := ParseMetrics(string(r.Raw))
	if err != nil {
		t.Fatalf("GET %s%s: %v", c.Base, path, err)
	}
	return m
}

// ParseMetrics reads the sample lines of a text exposition; comments and blank lines are
// skipped.
func ParseMetrics(text string) (Metrics, error) {
	var out Metrics
	for _, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := metricSample.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("unparsable metrics line %q", line)
		}
		v, err := strconv.ParseFloat(m[4], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %v", line, err)
		}
		s := Sample{Name: m[1], Labels: map[string]string{}, Value: v, Series: m[1] + m[2]}
		for _, l := range metricLabel.FindAllStringSubmatch(m[3], -1) {
			s.Labels[l[1]] = l[2]
		}
		out = append(out, s)
	}
	return out, nil
}

// Value is the value of the sample of name with exactly labels; 0 when absent.
func (m Metrics) Value(name string, labels map[string]string) float64 {
	for _, s := range m {
		if s.Name != name || len(s.Labels) != len(labels) {
			continue
		}
		match := true
		for k, v := range labels {
			if s.Labels[k] != v {
				match = false
			}
		}
		if match {
			return s.Value
		}
	}
	return 0
}

// Series is the value of the sample whose exposed name and labels are series (labels in the
// exposition's order); false when there is none.
func (m Metrics) Series(series string) (float64, bool) {
	for _, s := range m {
		if s.Series == series {
			return s.Value, true
		}
	}
	return 0, false
}
