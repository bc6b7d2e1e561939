package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/saasgate/saasgate/control/api"
	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/limit"
	"github.com/saasgate/saasgate/control/token"
)

// declared is one errs value written in the code: its code, its kind's name and where.
type declared struct {
	code, kind, at string
}

// TestErrorCodes_TableHoldsEveryDeclaredError reads every non-test Go file of the module for
// errs values (errs.E, errs.Ef, errs.Internal, &errs.Error{...}) and holds the table to them:
// every code declared is a row with the same kind, and every row is declared somewhere.
func TestErrorCodes_TableHoldsEveryDeclaredError(t *testing.T) {
	rows := map[string]api.ErrorCode{}
	for _, c := range api.ErrorCodes() {
		if _, dup := rows[c.Code]; dup {
			t.Errorf("code %q has two rows", c.Code)
		}
		rows[c.Code] = c
	}
	kinds := kindsByName()
	used := map[string]bool{}
	found := declaredErrors(t)
	if len(found) < 40 {
		t.Fatalf("found %d errs values in the code; the walk is broken", len(found))
	}
	for _, d := range found {
		used[d.code] = true
		row, ok := rows[d.code]
		if !ok {
			t.Errorf("%s: code %q is not in api's error table", d.at, d.code)
			continue
		}
		if kinds[d.kind] != row.Kind {
			t.Errorf("%s: code %q declared with %s; the table has kind %d", d.at, d.code, d.kind, row.Kind)
		}
	}
	for code := range rows {
		if !used[code] {
			t.Errorf("the table lists %q, which no code declares", code)
		}
	}
}

// TestErrorCodes_ReadmeListsEveryCode holds the README's error-code table to the code's.
func TestErrorCodes_ReadmeListsEveryCode(t *testing.T) {
	readme := readmeCodes(t)
	for _, c := range api.ErrorCodes() {
		status, ok := readme[c.Code]
		if !ok {
			t.Errorf("README's error codes lack %q (%d)", c.Code, c.Status())
			continue
		}
		if status != c.Status() {
			t.Errorf("README gives %q status %d; it is %d", c.Code, status, c.Status())
		}
		delete(readme, c.Code)
	}
	for code := range readme {
		t.Errorf("README lists %q, which is not in the table", code)
	}
}

func TestErrorCodes_StatusAndTitle(t *testing.T) {
	for _, c := range api.ErrorCodes() {
		if c.Status() == 0 || c.Title() != http.StatusText(c.Status()) {
			t.Errorf("%s: status %d, title %q", c.Code, c.Status(), c.Title())
		}
	}
}

func TestWriteError_InvalidTokenChallengesForABearerToken(t *testing.T) {
	keys, err := token.NewKeys([]byte("0123456789abcdef0123456789abcdef"), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	a := api.New(&api.API{Keys: keys})
	for _, authz := range []string{"", "Basic dXNlcjpwYXNz", "Bearer not-a-jwt"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/me", nil)
		req.Header.Set("Authorization", authz)
		a.ServeHTTP(rec, req)
		wantProblem(t, rec, http.StatusUnauthorized, "invalid_token", errs.ErrInvalidToken.Message)
		if h := rec.Header().Get("WWW-Authenticate"); h != `Bearer error="invalid_token"` {
			t.Errorf("Authorization %q: WWW-Authenticate %q", authz, h)
		}
	}
}

func TestWriteError_AuthRouteRateLimitedCarriesTheOutcomesRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		retry time.Duration
		want  string
	}{{2500 * time.Millisecond, "3"}, {0, "1"}, {90 * time.Second, "90"}} {
		a := api.New(&api.API{AuthLimit: func(context.Context, string, string) limit.Outcome {
			return limit.Outcome{Decision: limit.Decision{RetryAfter: tc.retry}}
		}})
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, httptest.NewRequest("POST", "/auth/login", strings.NewReader("{}")))
		wantProblem(t, rec, http.StatusTooManyRequests, "rate_limited", "Too many requests from this address; try again later.")
		if got := rec.Header().Get("Retry-After"); got != tc.want {
			t.Errorf("RetryAfter %v: Retry-After %q, want %q", tc.retry, got, tc.want)
		}
	}
}

func TestWriteError_NonDomainErrorIsAnInternalErrorThatShowsNothing(t *testing.T) {
	rec := httptest.NewRecorder()
	api.WriteError(rec, os.ErrPermission)
	wantProblem(t, rec, http.StatusInternalServerError, "internal", "Internal error.")
	if strings.Contains(rec.Body.String(), "permission") {
		t.Errorf("the cause leaks: %s", rec.Body)
	}
}

func wantProblem(t *testing.T, rec *httptest.ResponseRecorder, status int, code, detail string) {
	t.Helper()
	if rec.Code != status {
		t.Errorf("status %d, want %d", rec.Code, status)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q", ct)
	}
	var p api.Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	want := api.Problem{Type: api.ProblemType(code), Title: http.StatusText(status), Status: status, Detail: detail, Code: code}
	if p != want {
		t.Errorf("problem %+v, want %+v", p, want)
	}
}

// moduleRoot is the directory of go.mod above this package.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// declaredErrors finds the errs values of the module's non-test code. A code must be a string
// literal, so that the table can be checked against it (errs' own constructors excepted).
func declaredErrors(t *testing.T) []declared {
	t.Helper()
	root := moduleRoot(t)
	fset := gotoken.NewFileSet()
	var out []declared
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		inErrs := f.Name.Name == "errs"
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				fn := errsName(n.Fun, inErrs)
				if (fn == "E" || fn == "Ef") && len(n.Args) >= 2 {
					out = append(out, literalCode(t, fset, n, errsName(n.Args[0], inErrs), n.Args[1], inErrs)...)
				}
				if fn == "Internal" && !inErrs {
					out = append(out, declared{code: "internal", kind: "KindInternal", at: fset.Position(n.Pos()).String()})
				}
			case *ast.CompositeLit:
				if errsName(n.Type, inErrs) != "Error" {
					return true
				}
				var kind string
				var code ast.Expr
				for _, el := range n.Elts {
					kv, ok := el.(*ast.KeyValueExpr)
					if !ok {
						continue
					}
					switch key, _ := kv.Key.(*ast.Ident); {
					case key == nil:
					case key.Name == "Kind":
						kind = errsName(kv.Value, inErrs)
					case key.Name == "Code":
						code = kv.Value
					}
				}
				out = append(out, literalCode(t, fset, n, kind, code, inErrs)...)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// errsName is the name x refers to in package errs (errs.X outside it, X inside), or "".
func errsName(x ast.Expr, inErrs bool) string {
	switch x := x.(type) {
	case *ast.SelectorExpr:
		if pkg, ok := x.X.(*ast.Ident); ok && pkg.Name == "errs" && !inErrs {
			return x.Sel.Name
		}
	case *ast.Ident:
		if inErrs {
			return x.Name
		}
	}
	return ""
}

func literalCode(t *testing.T, fset *gotoken.FileSet, at ast.Node, kind string, code ast.Expr, inErrs bool) []declared {
	t.Helper()
	pos := fset.Position(at.Pos()).String()
	lit, ok := code.(*ast.BasicLit)
	if !ok || lit.Kind != gotoken.STRING {
		if !inErrs {
			t.Errorf("%s: an errs value whose code is not a string literal", pos)
		}
		return nil
	}
	s, err := strconv.Unquote(lit.Value)
	if err != nil {
		t.Fatalf("%s: %v", pos, err)
	}
	return []declared{{code: s, kind: kind, at: pos}}
}

func kindsByName() map[string]errs.Kind {
	return map[string]errs.Kind{
		"KindInternal": errs.KindInternal, "KindBadRequest": errs.KindBadRequest,
		"KindUnauthorized": errs.KindUnauthorized, "KindForbidden": errs.KindForbidden,
		"KindNotFound": errs.KindNotFound, "KindConflict": errs.KindConflict,
		"KindInvalid": errs.KindInvalid, "KindTooMany": errs.KindTooMany,
		"KindPaymentRequired": errs.KindPaymentRequired, "KindUnavailable": errs.KindUnavailable,
	}
}

// readmeCodes reads the README's error-code table (the one headed "| code | status |"): code
// to status.
func readmeCodes(t *testing.T) map[string]int {
	t.Helper()
	f, err := os.Open(filepath.Join(moduleRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	codes := map[string]int{}
	inTable := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "| code | status |") {
			inTable = true
			continue
		}
		if !inTable {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(line, "|")
		if len(cells) < 3 || strings.HasPrefix(strings.TrimSpace(cells[1]), "--") {
			continue
		}
		code := strings.Trim(strings.TrimSpace(cells[1]), "`")
		status, err := strconv.Atoi(strings.TrimSpace(cells[2]))
		if err != nil {
			t.Fatalf("README error codes: %q: %v", line, err)
		}
		if _, dup := codes[code]; dup {
			t.Errorf("README lists %q twice", code)
		}
		codes[code] = status
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(codes) == 0 {
		t.Fatal(`README has no error-code table (a table headed "| code | status | ... |")`)
	}
	return codes
}
