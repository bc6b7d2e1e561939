package main_test

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/saasgate/saasgate/internal/testenv"
)

// The Dockerfile's go build must be `make build`'s: same environment, flags and ldflags, the
// version stamped the same way; only the output path differs.
func TestDockerfile_BuildsLikeMakeBuild(t *testing.T) {
	makeLine := makeRecipeLine(t, "../../Makefile", "build", "build")
	lines := dockerInstructions(t, "../../Dockerfile")
	var dockerLine string
	for _, l := range lines {
		if strings.HasPrefix(l, "RUN ") && strings.Contains(l, " build ") && strings.Contains(l, "./cmd/saasgate") {
			dockerLine = strings.TrimPrefix(l, "RUN ")
		}
	}
	if dockerLine == "" {
		t.Fatal("no RUN ... go build ./cmd/saasgate in the Dockerfile")
	}
	mk, dk := buildWords(t, makeLine), buildWords(t, dockerLine)
	if !slices.Equal(mk, dk) {
		t.Fatalf("the Dockerfile builds with\n  %q\nmake build with\n  %q", dk, mk)
	}
	if !slices.Contains(mk, "-trimpath") || !slices.Contains(mk, "CGO_ENABLED=0") ||
		!slices.ContainsFunc(mk, func(w string) bool { return strings.Contains(w, "CustomVersion=VERSION") }) {
		t.Fatalf("make build must be static, trimmed and version-stamped: %q", mk)
	}
	if !slices.Contains(lines, "ARG VERSION=dev") {
		t.Error("the Dockerfile must take the version as ARG VERSION (default dev)")
	}
}

func TestDockerfile_MultiStageNonRootWithHealthcheck(t *testing.T) {
	lines := dockerInstructions(t, "../../Dockerfile")
	var froms, users []string
	health := ""
	for _, l := range lines {
		switch word, rest, _ := strings.Cut(l, " "); word {
		case "FROM":
			froms = append(froms, rest)
		case "USER":
			users = append(users, rest)
		case "HEALTHCHECK":
			health = rest
		}
	}
	if len(froms) < 2 {
		t.Errorf("not multi-stage: FROM %q", froms)
	}
	if len(users) == 0 || strings.HasPrefix(users[len(users)-1], "0") || strings.HasPrefix(users[len(users)-1], "root") {
		t.Errorf("the final image must run as a non-root USER, got %q", users)
	}
	if !strings.Contains(health, `"health"`) || !strings.Contains(health, "/healthz") {
		t.Errorf("HEALTHCHECK must run `saasgate health` against /healthz, got %q", health)
	}
}

// `make build VERSION=...` stamps what `saasgate version` prints first (Caddy's CustomVersion).
// The build goes to a temporary path: only the link step runs again, the packages are cached.
func TestMakeBuild_StampsTheVersion(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "saasgate")
	const stamp = "v0.0.0-stamp-test"
	if out, err := exec.Command("make", "-C", "../..", "build", "VERSION="+stamp, "BIN="+bin).CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("version: %v\n%s", err, out)
	}
	if f := strings.Fields(string(out)); len(f) < 2 || f[0] != stamp {
		t.Fatalf("saasgate version = %q, want it to lead with %q", out, stamp)
	}
}

func TestBinary_HealthExitsZeroOnlyOn200(t *testing.T) {
	status := http.StatusOK
	var gotHost string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHost = r.Host
		w.WriteHeader(status)
	}))
	defer srv.Close()
	health := func() error {
		return exec.Command(testenv.SaasgateBinary(t), "health", "--url", srv.URL+"/healthz", "--host", "api.localhost").Run()
	}
	if err := health(); err != nil || gotHost != "api.localhost" {
		t.Fatalf("health against a 200 = %v (Host %q), want success with Host api.localhost", err, gotHost)
	}
	status = http.StatusServiceUnavailable
	if err := health(); err == nil {
		t.Fatal("health against a 503 succeeded")
	}
	srv.Close()
	if err := health(); err == nil {
		t.Fatal("health against nothing listening succeeded")
	}
}

// dockerInstructions returns the Dockerfile's instructions, continuation lines joined, comments
// dropped.
func dockerInstructions(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	cur := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "#") || (l == "" && cur == "") {
			continue
		}
		if more, ok := strings.CutSuffix(l, `\`); ok {
			cur += strings.TrimSpace(more) + " "
			continue
		}
		out = append(out, strings.TrimSpace(cur+l))
		cur = ""
	}
	return out
}

// makeRecipeLine returns the recipe line of target that contains word.
func makeRecipeLine(t *testing.T, path, target, word string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	in := false
	for _, l := range strings.Split(string(raw), "\n") {
		switch {
		case strings.HasPrefix(l, target+":"):
			in = true
		case in && strings.HasPrefix(l, "\t"):
			if strings.Contains(l, " "+word+" ") {
				return strings.TrimSpace(l)
			}
		case in:
			in = false
		}
	}
	t.Fatalf("no %q line in the recipe of %s", word, target)
	return ""
}

var variable = regexp.MustCompile(`\$[({]([A-Z_]+)[)}]`)

// buildWords splits a shell command line into words (double quotes group), with make's $(X)
// and the shell's ${X} both read as X, $(GO) as go, and -o <path> dropped.
func buildWords(t *testing.T, line string) []string {
	t.Helper()
	line = strings.ReplaceAll(line, "$(GO)", "go")
	line = variable.ReplaceAllString(line, "$1")
	var words []string
	var cur strings.Builder
	quoted, inWord := false, false
	for _, r := range line {
		switch {
		case r == '"':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
			}
			inWord = false
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("unbalanced quote in %q", line)
	}
	if inWord {
		words = append(words, cur.String())
	}
	if i := slices.Index(words, "-o"); i >= 0 && i+1 < len(words) {
		words = slices.Delete(words, i, i+2)
	}
	return words
}
