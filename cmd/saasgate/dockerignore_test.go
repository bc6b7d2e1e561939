package main_test

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The build context leaves out local builds (bin/), data (data/), test output
// (test-artifacts/, *.test, *.prof) and the history (.git), and still holds everything the
// image's build reads: go.mod, go.sum, the Caddyfile and every Go source the binary is built
// from (with the files they embed). Matched as Docker matches .dockerignore: patterns anchored
// at the context's root, * within one path element, ** across them, and a directory's match
// excluding what it holds.
func TestDockerignore_KeepsLocalStateOutOfTheContext(t *testing.T) {
	ignore := readDockerignore(t, "../../.dockerignore")
	for _, p := range []string{
		"bin/saasgate", "bin/tools/staticcheck", "data/jwt_secret", "data/ferretdb/state.json",
		"test-artifacts/docs.png", ".git", ".git/HEAD", "caddymodule/caddymodule.test",
		"cpu.prof", "control/limit/mem.prof", "cover.out",
	} {
		if !ignore(p) {
			t.Errorf("%s is sent in the build context; .dockerignore must leave it out", p)
		}
	}
	for _, p := range []string{"go.mod", "go.sum", "Caddyfile", "Dockerfile", "cmd/saasgate/main.go"} {
		if ignore(p) {
			t.Errorf("%s is left out of the build context, but the build needs it", p)
		}
	}
	// Every file of the module's packages outside deploy/ is sent: the sources and whatever
	// they embed (the Swagger UI under control/api).
	root := "../.."
	sent := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		top, _, _ := strings.Cut(rel, "/")
		if d.IsDir() {
			switch top {
			case ".git", "bin", "data", "test-artifacts", "deploy", ".ci":
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(rel, ".go") || strings.Contains(rel, "/swaggerui/") {
			if ignore(rel) {
				t.Errorf("%s is left out of the build context", rel)
			}
			sent++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if sent < 50 {
		t.Fatalf("found only %d source files under %s", sent, root)
	}
}

// readDockerignore returns whether .dockerignore at path leaves a context path out. It
// refuses exception patterns (!): this test does not model them.
func readDockerignore(t *testing.T, path string) func(string) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("no .dockerignore: %v", err)
	}
	defer f.Close()
	var patterns []*regexp.Regexp
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasPrefix(l, "!") {
			t.Fatalf(".dockerignore: exception pattern %q; extend this test to model it", l)
		}
		l = strings.TrimPrefix(filepath.ToSlash(filepath.Clean(l)), "/")
		patterns = append(patterns, dockerPattern(l))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return func(p string) bool {
		// The path, or a directory holding it.
		for cur := p; cur != "." && cur != ""; cur = filepath.ToSlash(filepath.Dir(cur)) {
			for _, re := range patterns {
				if re.MatchString(cur) {
					return true
				}
			}
		}
		return false
	}
}

// dockerPattern compiles one .dockerignore pattern: ** any number of path elements, * and ?
// within one.
func dockerPattern(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		switch {
		case strings.HasPrefix(p[i:], "**/"):
			b.WriteString("(.*/)?")
			i += 2
		case strings.HasPrefix(p[i:], "**"):
			b.WriteString(".*")
			i++
		case p[i] == '*':
			b.WriteString("[^/]*")
		case p[i] == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(p[i : i+1]))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}
