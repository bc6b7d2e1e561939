package api

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/saasgate/saasgate/control/audit"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/limit"
	"github.com/saasgate/saasgate/control/notify"
	"github.com/saasgate/saasgate/control/tenant"
)

// Schemas are read from the Go types by reflection: a field's json name and type, and for a
// response, required unless the field is omitempty. Every struct is closed
// (additionalProperties false): decode refuses unknown fields in a body, and an answer that
// grows a field its type does not declare fails the conformance test.
//
// Two small sources of overrides:
//   - typeSchemas: named types with a fixed set of values (roles, statuses);
//   - a `doc` tag on the api package's own structs, or fieldDocs for other packages' fields:
//     "required", "enum=a|b", "values=a|b" (a map's values), "format=…", "minLength=N",
//     "maxLength=N", "maxItems=N", "minimum=N", "maximum=N".

var typeSchemas = map[reflect.Type]map[string]any{
	reflect.TypeFor[time.Time]():            {"type": "string", "format": "date-time"},
	reflect.TypeFor[identity.Role]():        enumSchema(string(identity.RoleUser), string(identity.RoleOwner), string(identity.RoleAdmin)),
	reflect.TypeFor[tenant.Status]():        enumSchema(string(tenant.StatusActive), string(tenant.StatusSuspended)),
	reflect.TypeFor[tenant.BillingStatus](): enumSchema(billingStatuses()...),
}

// billingStatuses are the values of a subscription's status: "none" before any (the current
// subscription's answer), the Stripe states saasgate keeps, and "" in a tenant whose billing
// record exists without a status yet.
func billingStatuses() []string {
	return []string{string(tenant.BillingActive), "none", string(tenant.BillingTrialing), string(tenant.BillingPastDue),
		string(tenant.BillingSuspended), string(tenant.BillingCanceled), string(tenant.BillingNone)}
}

// fieldDocs are doc tags for fields of other packages' types, by type and json name.
var fieldDocs = map[reflect.Type]map[string]string{
	reflect.TypeFor[notify.Endpoint]():   {"events": "values=" + strings.Join(notify.EventTypes, "|")},
	reflect.TypeFor[notify.Delivery]():   {"status": "enum=" + notify.StatusPending + "|" + notify.StatusSucceeded + "|" + notify.StatusFailed, "type": "enum=" + strings.Join(notify.EventTypes, "|")},
	reflect.TypeFor[audit.Entry]():       {"outcome": "enum=" + audit.OutcomeSuccess + "|" + audit.OutcomeFailure + "|" + audit.OutcomeDenied},
	reflect.TypeFor[endpointBody]():      {"events": "values=" + strings.Join(notify.EventTypes, "|")},
	reflect.TypeFor[patchEndpointBody](): {"events": "values=" + strings.Join(notify.EventTypes, "|")},
}

// componentNames name the components whose Go name says too little out of its package.
var componentNames = map[reflect.Type]string{
	reflect.TypeFor[audit.Entry]():        "AuditEntry",
	reflect.TypeFor[audit.Page]():         "AuditPage",
	reflect.TypeFor[audit.Verification](): "AuditVerification",
	reflect.TypeFor[audit.Break]():        "AuditBreak",
	reflect.TypeFor[limit.Status]():       "RateLimitStatus",
	reflect.TypeFor[tenant.Billing]():     "TenantBilling",
	reflect.TypeFor[notify.Attempt]():     "DeliveryAttempt",
}

func enumSchema(values ...string) map[string]any {
	out := make([]any, len(values))
	for i, v := range values {
		out[i] = v
	}
	return map[string]any{"type": "string", "enum": out}
}

// schemaGen turns Go types into JSON Schemas. Response types become components (named after
// their Go type), so the document reads "Tenant" rather than repeating it; request bodies are
// written inline, where their `doc` tags say what decode's callers require.
type schemaGen struct {
	components map[string]any
	names      map[reflect.Type]string
}

func newSchemaGen() *schemaGen {
	return &schemaGen{components: map[string]any{}, names: map[reflect.Type]string{}}
}

// response is the schema of an answer of type t, by reference to its component.
func (g *schemaGen) response(t reflect.Type) map[string]any { return g.of(t, true) }

// request is the inline schema of a body of type t.
func (g *schemaGen) request(t reflect.Type) map[string]any { return g.of(t, false) }

func (g *schemaGen) of(t reflect.Type, response bool) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if s, ok := typeSchemas[t]; ok {
		return s
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": g.of(t.Elem(), response)}
	case reflect.Map:
		// An open object: a Stripe event, an audit entry's detail.
		return map[string]any{"type": "object"}
	case reflect.Struct:
		if !response {
			return g.object(t, false)
		}
		return map[string]any{"$ref": "#/components/schemas/" + g.component(t)}
	}
	panic(fmt.Sprintf("openapi: no schema for %s", t))
}

// component registers t's schema once and returns its name.
func (g *schemaGen) component(t reflect.Type) string {
	if name, ok := g.names[t]; ok {
		return name
	}
	name := []rune(t.Name())
	if n, ok := componentNames[t]; ok {
		name = []rune(n)
	}
	name[0] = unicode.ToUpper(name[0])
	for other, n := range g.names {
		if n == string(name) {
			panic(fmt.Sprintf("openapi: %s and %s would share the component name %s", t, other, n))
		}
	}
	g.names[t] = string(name)
	g.components[string(name)] = g.object(t, true)
	return string(name)
}

// object is a struct's schema: its json fields (embedded structs' fields among them, as
// encoding/json flattens them), closed.
func (g *schemaGen) object(t reflect.Type, response bool) map[string]any {
	props := map[string]any{}
	var required []any
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			name, opts, _ := strings.Cut(tag, ",")
			if f.Anonymous && name == "" {
				et := f.Type
				if et.Kind() == reflect.Pointer {
					et = et.Elem()
				}
				walk(et)
				continue
			}
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			omitempty := slices.Contains(strings.Split(opts, ","), "omitempty")
			doc := f.Tag.Get("doc")
			if d, ok := fieldDocs[t][name]; ok {
				doc = d
			}
			s, req := g.field(f.Type, doc, response)
			// A nil pointer is encoded as null unless the field is omitempty; a body may send
			// null for one too (decode leaves it nil).
			if f.Type.Kind() == reflect.Pointer && !omitempty {
				s = nullable(s)
			}
			props[name] = s
			if req || response && !omitempty {
				required = append(required, name)
			}
		}
	}
	walk(t)
	out := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if required != nil {
		slices.SortFunc(required, func(a, b any) int { return strings.Compare(a.(string), b.(string)) })
		out["required"] = required
	}
	return out
}

// field is a field's schema with its doc tag applied, and whether the tag requires it.
func (g *schemaGen) field(t reflect.Type, doc string, response bool) (map[string]any, bool) {
	base := g.of(t, response)
	if doc == "" {
		return base, false
	}
	s := map[string]any{}
	for k, v := range base {
		s[k] = v
	}
	required := false
	for _, item := range strings.Split(doc, ",") {
		key, val, _ := strings.Cut(item, "=")
		switch key {
		case "required":
			required = true
		case "enum":
			s["enum"] = enumSchema(strings.Split(val, "|")...)["enum"]
		case "values":
			inner := enumSchema(strings.Split(val, "|")...)
			if s["type"] == "array" {
				s["items"] = inner
			} else {
				s["additionalProperties"] = inner
			}
		case "format":
			s["format"] = val
		case "minLength", "maxLength", "maxItems", "minItems", "minimum", "maximum":
			n, err := strconv.Atoi(val)
			if err != nil {
				panic("openapi: bad doc tag " + doc)
			}
			s[key] = n
		default:
			panic("openapi: unknown doc tag " + doc)
		}
	}
	return s, required
}

// nullable admits null besides s: JSON Schema 2020-12, as OpenAPI 3.1 uses it.
func nullable(s map[string]any) map[string]any {
	if _, ref := s["$ref"]; ref {
		return map[string]any{"anyOf": []any{s, map[string]any{"type": "null"}}}
	}
	out := map[string]any{}
	for k, v := range s {
		out[k] = v
	}
	if typ, ok := s["type"].(string); ok {
		out["type"] = []any{typ, "null"}
	}
	if enum, ok := s["enum"].([]any); ok {
		out["enum"] = append(slices.Clone(enum), nil)
	}
	return out
}
