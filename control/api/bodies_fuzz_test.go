package api

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/saasgate/saasgate/control/errs"
)

// requestBodies lists every type a handler decodes a request body into. A route with a new
// body type adds it here; TestRequestBodies_ListEveryDecodedType fails until it does, so
// FuzzDecodeBody covers every body without anyone remembering to.
var requestBodies = []func() any{
	func() any { return new(signupBody) },
	func() any { return new(loginBody) },
	func() any { return new(refreshBody) },
	func() any { return new(logoutBody) },
	func() any { return new(subscribeBody) },
	func() any { return new(createTenantBody) },
	func() any { return new(patchTenantBody) },
	func() any { return new(inviteBody) },
	func() any { return new(patchUserBody) },
	func() any { return new(endpointBody) },
	func() any { return new(patchEndpointBody) },
	func() any { return new(recoverBody) },
	func() any { return new(mfaCodeBody) },
	func() any { return new(mfaVerifyBody) },
	func() any { return new(noBody) },
}

// bodyTypes is requestBodies sorted by type name, so that a seed's first byte keeps naming
// the same type when a body is added in the middle of the list above.
func bodyTypes() []func() any {
	out := slices.Clone(requestBodies)
	slices.SortFunc(out, func(a, b func() any) int { return strings.Compare(bodyName(a()), bodyName(b())) })
	return out
}

func bodyName(v any) string { return reflect.TypeOf(v).Elem().Name() }

// decodeBody runs decode as a handler does, on body as the request's.
func decodeBody(dst any, body []byte) error {
	r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	return decode(httptest.NewRecorder(), r, dst)
}

// FuzzDecodeBody feeds every request body type arbitrary bytes; the first byte picks the type.
// Whatever the bytes, decode does not panic; what it refuses is a 400 bad_request domain error,
// and what it accepts re-encodes to JSON that decodes again to the same encoding (nothing is
// accepted that the API could not hand on, store or echo).
func FuzzDecodeBody(f *testing.F) {
	types := bodyTypes()
	seeds := []string{
		``, `{}`, `null`, `[]`, `{"email":"a@b.c","password":"pw","tenant":"acme"}`,
		`{"name":"Acme","status":"active","plan":"pro"}`, `{"name":null}`, `{"role":"owner"}`,
		`{"url":"https://h.example/x","events":["tenant.updated"],"description":"d"}`,
		`{"events":null,"enabled":true}`, `{"since":"2026-01-02T03:04:05.999999999+05:30"}`,
		`{"since":"0000-01-01T00:00:00Z"}`, `{"refresh_token":"x"} {}`, `{"tenant_id":{"$ne":""}}`,
		`{"email":"\ud800"}`, `{"unknown":1}`, `{"EMAIL":"case"}`, `{"email":"a","email":"b"}`,
		`{"plan":"` + strings.Repeat("x", 1<<20) + `"}`, "{\"role\":\"\xff\"}",
	}
	for i := range types {
		for _, s := range seeds {
			f.Add(append([]byte{byte(i)}, s...))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		newBody := types[int(data[0])%len(types)]
		v, body := newBody(), data[1:]
		if err := decodeBody(v, body); err != nil {
			e, ok := errs.As(err)
			if !ok || e.Kind != errs.KindBadRequest || e.Code != "bad_request" {
				t.Fatalf("%s: decode(%q) = %v; want a bad_request domain error", bodyName(v), body, err)
			}
			rec := httptest.NewRecorder()
			WriteError(rec, err)
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("%s: decode(%q) error written as %d, want 400", bodyName(v), body, rec.Code)
			}
			return
		}
		first, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%s: decode(%q) accepted %+v, which does not encode: %v", bodyName(v), body, v, err)
		}
		again := newBody()
		if err := decodeBody(again, first); err != nil {
			t.Fatalf("%s: the re-encoding %s of %q is refused: %v", bodyName(v), first, body, err)
		}
		if second, _ := json.Marshal(again); !bytes.Equal(first, second) {
			t.Fatalf("%s: %q decodes to %s, which decodes to %s", bodyName(v), body, first, second)
		}
	})
}

// Every decode and decodeOptional call of the package, read from the source, decodes into a
// type listed in requestBodies; a call whose type cannot be told fails too, so that a handler
// written another way is looked at rather than left out of the fuzz target.
func TestRequestBodies_ListEveryDecodedType(t *testing.T) {
	listed := map[string]bool{}
	for _, b := range requestBodies {
		listed[bodyName(b())] = true
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	calls := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		file, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil || fn.Name.Name == "decodeOptional" {
				continue
			}
			vars := localTypes(fn)
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) != 3 {
					return true
				}
				if id, ok := call.Fun.(*ast.Ident); !ok || (id.Name != "decode" && id.Name != "decodeOptional") {
					return true
				}
				calls++
				at := fset.Position(call.Pos())
				typ := ""
				if u, ok := call.Args[2].(*ast.UnaryExpr); ok && u.Op == token.AND {
					if id, ok := u.X.(*ast.Ident); ok {
						typ = vars[id.Name]
					}
				}
				switch {
				case typ == "":
					t.Errorf("%s: cannot tell what %s decodes into; decode into &v of a `var v T`", at, fn.Name.Name)
				case !listed[typ]:
					t.Errorf("%s: %s decodes into %s, which requestBodies (bodies_fuzz_test.go) does not list", at, fn.Name.Name, typ)
				}
				return true
			})
		}
	}
	if calls < len(requestBodies) {
		t.Fatalf("found %d decode calls for %d listed bodies: the source walk is broken", calls, len(requestBodies))
	}
}

// localTypes maps the variables a function declares as `var v T` to T's name.
func localTypes(fn *ast.FuncDecl) map[string]string {
	out := map[string]string{}
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		spec, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		if id, ok := spec.Type.(*ast.Ident); ok {
			for _, name := range spec.Names {
				out[name.Name] = id.Name
			}
		}
		return true
	})
	return out
}
