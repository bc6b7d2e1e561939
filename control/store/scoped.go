package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

// Layout is where a tenant's own documents (users, invitations, audit entries, webhook
// endpoints) live. It is chosen at install: CheckLayout refuses a database holding the other.
type Layout string

const (
	// LayoutCollections gives each tenant collections of its own, t_<tenant>_<suffix>.
	LayoutCollections Layout = "collections"
	// LayoutShared keeps every tenant's documents in one collection per suffix, named by the
	// suffix, each document carrying FieldTenant, which leads every index and every query.
	LayoutShared Layout = "shared"
)

// Layouts are the values of the tenant_layout option.
var Layouts = []Layout{LayoutCollections, LayoutShared}

// ParseLayout reads a tenant_layout value; empty is LayoutCollections.
func ParseLayout(s string) (Layout, error) {
	switch Layout(s) {
	case "", LayoutCollections:
		return LayoutCollections, nil
	case LayoutShared:
		return LayoutShared, nil
	}
	return "", fmt.Errorf("tenant layout %q is not one of collections, shared", s)
}

// FieldTenant is the field naming a document's tenant.
const FieldTenant = "tenant_id"

// TenantSuffixes are every per-tenant collection's suffix.
var TenantSuffixes = []string{SuffixUsers, SuffixInvitations, SuffixAudit, SuffixWebhookEndpoints}

// ErrTenantField is a filter, update or document that names a tenant other than the handle's,
// or an update or pipeline stage that could reach another tenant's documents.
var ErrTenantField = errors.New("store: the query names another tenant")

// Scoped is one tenant's view of a per-tenant collection, the only way the domain stores reach
// per-tenant documents. In the shared layout every filter gets the tenant as its first field
// (an aggregation, a first $match on it); in both, every inserted or replaced document carries
// it, and a filter, update, document or pipeline that names another tenant, or could reach
// another tenant's documents, is refused with ErrTenantField before it reaches the server.
//
// In the collections layout the collection itself is the tenant's, so filters are left as
// they are: documents written before this layout existed (users, invitations) carry no
// tenant_id, and adding it would hide them. Documents written now carry it in both layouts.
type Scoped struct {
	c        *mongo.Collection
	tenantID string
	shared   bool
}

// Scoped returns tenantID's handle on the per-tenant collection suffix in layout (empty:
// collections). It panics on an id that is not a DNS label, as TenantCollection does.
func (db *DB) Scoped(layout Layout, tenantID, suffix string) *Scoped {
	if !ValidTenantID(tenantID) {
		panic(fmt.Sprintf("store: tenant id %q is not a DNS label", tenantID))
	}
	if layout == LayoutShared {
		return &Scoped{c: db.C(suffix), tenantID: tenantID, shared: true}
	}
	return &Scoped{c: db.C(TenantCollection(tenantID, suffix)), tenantID: tenantID}
}

// EnsureShared creates the shared collection suffix, with indexes each led by FieldTenant, in
// the shared layout; in the collections layout it does nothing.
func (db *DB) EnsureShared(ctx context.Context, layout Layout, suffix string, indexes ...Index) error {
	if layout != LayoutShared {
		return nil
	}
	led := make([]Index, len(indexes))
	for i, ix := range indexes {
		led[i] = Index{Keys: append([]string{FieldTenant}, ix.Keys...), Unique: ix.Unique}
	}
	if len(led) == 0 {
		led = []Index{{Keys: []string{FieldTenant}}}
	}
	return db.EnsureCollection(ctx, suffix, led...)
}

// EnsureTenant creates tenantID's collection suffix with indexes in the collections layout;
// in the shared layout it does nothing (EnsureShared made the collection at start), so
// creating a tenant creates no collection.
func (db *DB) EnsureTenant(ctx context.Context, layout Layout, tenantID, suffix string, indexes ...Index) error {
	if layout == LayoutShared {
		return nil
	}
	created, err := db.CreateTenantCollection(ctx, tenantID, suffix, indexes...)
	if err != nil || created {
		return err
	}
	return db.EnsureTenantIndexes(ctx, tenantID, suffix, indexes...)
}

// filter checks f and returns the filter sent: f with the tenant first in the shared layout.
// A top-level tenant_id equal to the handle's is dropped (it is added back in front).
func (s *Scoped) filter(f bson.D) (bson.D, error) {
	if err := s.check(f); err != nil {
		return nil, err
	}
	out := make(bson.D, 0, len(f)+1)
	if s.shared {
		out = append(out, bson.E{Key: FieldTenant, Value: s.tenantID})
	}
	for _, e := range f {
		if e.Key != FieldTenant {
			out = append(out, e)
		}
	}
	return out, nil
}

// check walks the filter f and refuses a tenant_id anywhere but at the top level, or whose
// value is not exactly the handle's tenant id, and JavaScript, which could read fields the walk
// cannot see.
func (s *Scoped) check(f any) error {
	raw, err := bson.Marshal(f)
	if err != nil {
		return fmt.Errorf("store: encoding a query: %w", err)
	}
	return s.walk(bson.Raw(raw), true)
}

func (s *Scoped) walk(d bson.Raw, top bool) error {
	elems, err := d.Elements()
	if err != nil {
		return err
	}
	for _, e := range elems {
		if isTenantField(e.Key()) {
			if str, ok := e.Value().StringValueOK(); !top || !ok || str != s.tenantID || e.Key() != FieldTenant {
				return fmt.Errorf("%w: %s", ErrTenantField, e.Key())
			}
			continue
		}
		if javaScriptOperators[e.Key()] {
			return fmt.Errorf("%w: %s in a query", ErrTenantField, e.Key())
		}
		if err := s.walkValue(e.Value()); err != nil {
			return err
		}
	}
	return nil
}

// javaScriptOperators run JavaScript over the documents, whose code (a string or a code value)
// could read fields the walk cannot see.
var javaScriptOperators = map[string]bool{"$where": true, "$function": true, "$accumulator": true}

func (s *Scoped) walkValue(val bson.RawValue) error {
	switch val.Type {
	case bson.TypeEmbeddedDocument:
		return s.walk(val.Document(), false)
	case bson.TypeArray:
		vals, err := val.Array().Values()
		if err != nil {
			return err
		}
		for _, v := range vals {
			if err := s.walkValue(v); err != nil {
				return err
			}
		}
	case bson.TypeJavaScript, bson.TypeCodeWithScope:
		return fmt.Errorf("%w: JavaScript in a query", ErrTenantField)
	}
	return nil
}

func isTenantField(key string) bool {
	return key == FieldTenant || strings.HasPrefix(key, FieldTenant+".")
}

// document returns doc with the handle's tenant set; a doc whose tenant_id is another's (or
// not a string) is refused. Only the top level names the document's tenant: a tenant_id
// nested in a detail is data.
func (s *Scoped) document(doc any) (bson.D, error) {
	raw, err := bson.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("store: encoding a document: %w", err)
	}
	elems, err := bson.Raw(raw).Elements()
	if err != nil {
		return nil, err
	}
	out := make(bson.D, 0, len(elems)+1)
	for _, e := range elems {
		if e.Key() == FieldTenant {
			if str, ok := e.Value().StringValueOK(); !ok || str != s.tenantID {
				return nil, fmt.Errorf("%w: document %s", ErrTenantField, FieldTenant)
			}
			continue
		}
		out = append(out, bson.E{Key: e.Key(), Value: e.Value()})
	}
	return append(out, bson.E{Key: FieldTenant, Value: s.tenantID}), nil
}

// update refuses an update that is not made of operators, or that touches tenant_id at all.
func (s *Scoped) update(u bson.D) error {
	raw, err := bson.Marshal(u)
	if err != nil {
		return fmt.Errorf("store: encoding an update: %w", err)
	}
	ops, err := bson.Raw(raw).Elements()
	if err != nil {
		return err
	}
	for _, op := range ops {
		fields, ok := op.Value().DocumentOK()
		if !strings.HasPrefix(op.Key(), "$") || !ok {
			return fmt.Errorf("store: update %q is not an operator over a document", op.Key())
		}
		elems, err := fields.Elements()
		if err != nil {
			return err
		}
		for _, f := range elems {
			target, _ := f.Value().StringValueOK() // $rename's targets are values
			if isTenantField(f.Key()) || op.Key() == "$rename" && isTenantField(target) {
				return fmt.Errorf("%w: %s %s", ErrTenantField, op.Key(), f.Key())
			}
		}
	}
	return nil
}

// FindOne decodes into out the first document f selects; mongo.ErrNoDocuments when none.
func (s *Scoped) FindOne(ctx context.Context, f bson.D, out any, opts ...*options.FindOneOptions) error {
	q, err := s.filter(f)
	if err != nil {
		return err
	}
	return s.c.FindOne(ctx, q, opts...).Decode(out)
}

// Find opens a cursor over the documents f selects.
func (s *Scoped) Find(ctx context.Context, f bson.D, opts ...*options.FindOptions) (*mongo.Cursor, error) {
	q, err := s.filter(f)
	if err != nil {
		return nil, err
	}
	return s.c.Find(ctx, q, opts...)
}

// CountDocuments counts the documents f selects.
func (s *Scoped) CountDocuments(ctx context.Context, f bson.D) (int64, error) {
	q, err := s.filter(f)
	if err != nil {
		return 0, err
	}
	return s.c.CountDocuments(ctx, q)
}

// InsertOne inserts doc, carrying the handle's tenant.
func (s *Scoped) InsertOne(ctx context.Context, doc any) error {
	d, err := s.document(doc)
	if err != nil {
		return err
	}
	_, err = s.c.InsertOne(ctx, d)
	return err
}

// UpdateOne applies u to the first document f selects. Upserts are refused: an upsert's new
// document is built from the filter, and this handle has no need of one.
func (s *Scoped) UpdateOne(ctx context.Context, f, u bson.D) (*mongo.UpdateResult, error) {
	q, err := s.filter(f)
	if err != nil {
		return nil, err
	}
	if err := s.update(u); err != nil {
		return nil, err
	}
	return s.c.UpdateOne(ctx, q, u)
}

// FindOneAndUpdate applies u to the first document f selects and decodes it into out (after
// the update when opts say so); mongo.ErrNoDocuments when none.
func (s *Scoped) FindOneAndUpdate(ctx context.Context, f, u bson.D, out any, opts ...*options.FindOneAndUpdateOptions) error {
	q, err := s.filter(f)
	if err != nil {
		return err
	}
	if err := s.update(u); err != nil {
		return err
	}
	for _, o := range opts {
		if o != nil && o.Upsert != nil && *o.Upsert {
			return errors.New("store: a scoped handle does not upsert")
		}
	}
	return s.c.FindOneAndUpdate(ctx, q, u, opts...).Decode(out)
}

// ReplaceOne replaces the first document f selects with doc, carrying the handle's tenant.
func (s *Scoped) ReplaceOne(ctx context.Context, f bson.D, doc any) (*mongo.UpdateResult, error) {
	q, err := s.filter(f)
	if err != nil {
		return nil, err
	}
	d, err := s.document(doc)
	if err != nil {
		return nil, err
	}
	return s.c.ReplaceOne(ctx, q, d)
}

// DeleteOne deletes the first document f selects.
func (s *Scoped) DeleteOne(ctx context.Context, f bson.D) (*mongo.DeleteResult, error) {
	q, err := s.filter(f)
	if err != nil {
		return nil, err
	}
	return s.c.DeleteOne(ctx, q)
}

// DeleteMany deletes the documents f selects.
func (s *Scoped) DeleteMany(ctx context.Context, f bson.D) (*mongo.DeleteResult, error) {
	q, err := s.filter(f)
	if err != nil {
		return nil, err
	}
	return s.c.DeleteMany(ctx, q)
}

// crossStages read or write other collections, where the tenant's $match does not reach.
var crossStages = map[string]bool{"$lookup": true, "$graphLookup": true, "$unionWith": true, "$out": true, "$merge": true,
	"$facet": true, "$collStats": true, "$indexStats": true, "$currentOp": true, "$listSessions": true, "$documents": true}

// Aggregate runs pipeline over the tenant's documents: in the shared layout a $match on the
// tenant goes first. Stages that reach other collections are refused, as is any tenant_id
// naming another tenant.
func (s *Scoped) Aggregate(ctx context.Context, pipeline mongo.Pipeline) (*mongo.Cursor, error) {
	out := make(mongo.Pipeline, 0, len(pipeline)+1)
	if s.shared {
		out = append(out, bson.D{{Key: "$match", Value: bson.D{{Key: FieldTenant, Value: s.tenantID}}}})
	}
	for _, stage := range pipeline {
		for _, e := range stage {
			if crossStages[e.Key] {
				return nil, fmt.Errorf("%w: stage %s", ErrTenantField, e.Key)
			}
		}
		if err := s.check(stage); err != nil {
			return nil, err
		}
		out = append(out, stage)
	}
	return s.c.Aggregate(ctx, out)
}

// tenantCollectionPattern matches the per-tenant collections of the collections layout.
var tenantCollectionPattern = regexp.MustCompile(`^t_[a-z0-9-]+_(` + strings.Join(TenantSuffixes, "|") + `)$`)

// DetectLayout reports the layout of the data the database holds: found is false when it holds
// neither layout's collections (a new install).
func (db *DB) DetectLayout(ctx context.Context) (layout Layout, found bool, err error) {
	names, err := db.CollectionNames(ctx)
	if err != nil {
		return "", false, err
	}
	var shared, perTenant string
	for _, n := range names {
		for _, suffix := range TenantSuffixes {
			if n == suffix && shared == "" {
				shared = n
			}
		}
		if tenantCollectionPattern.MatchString(n) && perTenant == "" {
			perTenant = n
		}
	}
	switch {
	case shared != "" && perTenant != "":
		return "", true, fmt.Errorf("the database holds collections of both tenant layouts (%s and %s)", shared, perTenant)
	case shared != "":
		return LayoutShared, true, nil
	case perTenant != "":
		return LayoutCollections, true, nil
	}
	return "", false, nil
}

// CheckLayout refuses to run with layout over a database that holds the other layout's data:
// the layout is chosen at install.
func (db *DB) CheckLayout(ctx context.Context, layout Layout) error {
	if layout == "" {
		layout = LayoutCollections
	}
	found, ok, err := db.DetectLayout(ctx)
	if err != nil {
		return err
	}
	if ok && found != layout {
		return fmt.Errorf("tenant_layout is %s, but database %s holds data of the %s layout; the layout is chosen at install "+
			"and cannot change (set tenant_layout %s, or start on an empty database)", layout, db.Database.Name(), found, found)
	}
	return nil
}
