package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"

	"github.com/saasgate/saasgate/control/store"
	"github.com/saasgate/saasgate/internal/testenv"
)

// thing is the test's per-tenant document.
type thing struct {
	ID     string `bson:"_id"`
	Name   string `bson:"name"`
	N      int    `bson:"n"`
	Tenant string `bson:"tenant_id,omitempty"`
}

// scopedPair is two tenants' handles on the same per-tenant collection, each holding the same
// documents (the same ids in the collections layout, where ids are per tenant).
type scopedPair struct {
	db     *store.DB
	layout store.Layout
	a, b   *store.Scoped
	bIDs   []string
}

func newScopedPair(t *testing.T, layout store.Layout) *scopedPair {
	t.Helper()
	ctx := context.Background()
	db := testenv.DB(t)
	ix := store.Index{Keys: []string{"name"}, Unique: true}
	if err := db.EnsureShared(ctx, layout, "things", ix); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"alpha", "bravo"} {
		if err := db.EnsureTenant(ctx, layout, id, "things", ix); err != nil {
			t.Fatal(err)
		}
	}
	p := &scopedPair{db: db, layout: layout, a: db.Scoped(layout, "alpha", "things"), b: db.Scoped(layout, "bravo", "things")}
	for i, name := range []string{"x", "y", "z"} {
		aID, bID := "id-"+name, "id-"+name
		if layout == store.LayoutShared {
			// _id is unique across the shared collection.
			bID = "b-" + name
		}
		if err := p.a.InsertOne(ctx, thing{ID: aID, Name: name, N: i}); err != nil {
			t.Fatal(err)
		}
		if err := p.b.InsertOne(ctx, thing{ID: bID, Name: name, N: i}); err != nil {
			t.Fatal(err)
		}
		p.bIDs = append(p.bIDs, bID)
	}
	return p
}

// bravo reads bravo's documents behind the handles' back: the raw collection.
func (p *scopedPair) bravo(t *testing.T) []thing {
	t.Helper()
	name, filter := store.TenantCollection("bravo", "things"), bson.D{}
	if p.layout == store.LayoutShared {
		name, filter = "things", bson.D{{Key: "tenant_id", Value: "bravo"}}
	}
	cur, err := p.db.C(name).Find(context.Background(), filter)
	if err != nil {
		t.Fatal(err)
	}
	var out []thing
	if err := cur.All(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// untouched fails unless bravo still holds its three documents as written.
func (p *scopedPair) untouched(t *testing.T) {
	t.Helper()
	got := p.bravo(t)
	if len(got) != 3 {
		t.Fatalf("bravo holds %d documents, want 3: %+v", len(got), got)
	}
	for i, d := range got {
		if d.ID != p.bIDs[i] || d.N != i || d.Tenant != "bravo" {
			t.Fatalf("bravo's document %d changed: %+v", i, d)
		}
	}
}

// TestScoped_Isolation: whatever filter, update, document or pipeline alpha's handle is given
// (including ones naming bravo, its ids, or tenant_id in any position), it reads, changes and
// deletes only alpha's documents, or refuses with ErrTenantField; in both layouts.
func TestScoped_Isolation(t *testing.T) {
	for _, layout := range store.Layouts {
		t.Run(string(layout), func(t *testing.T) {
			ctx := context.Background()
			p := newScopedPair(t, layout)
			refused := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, store.ErrTenantField) {
					t.Errorf("%s: err = %v, want ErrTenantField", what, err)
				}
			}

			readers := []bson.D{
				{},
				{{Key: "name", Value: "x"}},
				{{Key: "_id", Value: p.bIDs[0]}},
				{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{p.bIDs[0], p.bIDs[1], "id-x"}}}}},
				{{Key: "tenant_id", Value: "alpha"}},
				{{Key: "$or", Value: bson.A{bson.D{{Key: "name", Value: "x"}}, bson.D{{Key: "_id", Value: p.bIDs[1]}}}}},
			}
			for _, f := range readers {
				cur, err := p.a.Find(ctx, f)
				if err != nil {
					t.Fatalf("Find %v: %v", f, err)
				}
				var got []thing
				if err := cur.All(ctx, &got); err != nil {
					t.Fatal(err)
				}
				for _, d := range got {
					if d.Tenant != "alpha" || strings.HasPrefix(d.ID, "b-") {
						t.Errorf("Find %v for alpha returned %+v", f, d)
					}
				}
				n, err := p.a.CountDocuments(ctx, f)
				if err != nil || n != int64(len(got)) || n > 3 {
					t.Errorf("Count %v = %d, %v; Find saw %d", f, n, err, len(got))
				}
				var one thing
				if err := p.a.FindOne(ctx, f, &one); err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
					t.Errorf("FindOne %v: %v", f, err)
				} else if err == nil && one.Tenant != "alpha" {
					t.Errorf("FindOne %v for alpha returned %+v", f, one)
				}
			}
			if layout == store.LayoutShared {
				var one thing
				err := p.a.FindOne(ctx, bson.D{{Key: "_id", Value: p.bIDs[0]}}, &one)
				if !errors.Is(err, mongo.ErrNoDocuments) {
					t.Errorf("FindOne of bravo's id for alpha: %+v, %v", one, err)
				}
			}

			adversarial := []bson.D{
				{{Key: "tenant_id", Value: "bravo"}},
				{{Key: "name", Value: "x"}, {Key: "tenant_id", Value: "bravo"}},
				{{Key: "tenant_id", Value: bson.D{{Key: "$ne", Value: "alpha"}}}},
				{{Key: "tenant_id", Value: bson.D{{Key: "$in", Value: bson.A{"alpha", "bravo"}}}}},
				{{Key: "$or", Value: bson.A{bson.D{{Key: "tenant_id", Value: "bravo"}}, bson.D{{Key: "name", Value: "x"}}}}},
				{{Key: "$nor", Value: bson.A{bson.D{{Key: "tenant_id", Value: "alpha"}, {Key: "n", Value: 9}}, bson.D{{Key: "tenant_id", Value: "alpha"}}}}},
				{{Key: "tenant_id.x", Value: 1}},
				{{Key: "tenant_id", Value: 7}},
				{{Key: "$where", Value: primitive.JavaScript("this.tenant_id == 'bravo'")}},
				{{Key: "$where", Value: "this.tenant_id == 'bravo'"}},
				{{Key: "$expr", Value: bson.D{{Key: "$function", Value: bson.D{{Key: "body", Value: "function(t) { return t == 'bravo' }"}, {Key: "args", Value: bson.A{"$tenant_id"}}, {Key: "lang", Value: "js"}}}}}},
			}
			for _, f := range adversarial {
				_, err := p.a.Find(ctx, f)
				refused("Find "+str(f), err)
				refused("FindOne "+str(f), p.a.FindOne(ctx, f, &thing{}))
				_, err = p.a.CountDocuments(ctx, f)
				refused("Count "+str(f), err)
				_, err = p.a.UpdateOne(ctx, f, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: 99}}}})
				refused("UpdateOne "+str(f), err)
				refused("FindOneAndUpdate "+str(f), p.a.FindOneAndUpdate(ctx, f, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: 99}}}}, &thing{}))
				_, err = p.a.ReplaceOne(ctx, f, thing{ID: "id-x", Name: "x"})
				refused("ReplaceOne "+str(f), err)
				_, err = p.a.DeleteOne(ctx, f)
				refused("DeleteOne "+str(f), err)
				_, err = p.a.DeleteMany(ctx, f)
				refused("DeleteMany "+str(f), err)
				_, err = p.a.Aggregate(ctx, mongo.Pipeline{{{Key: "$match", Value: f}}})
				refused("Aggregate $match "+str(f), err)
			}

			for _, u := range []bson.D{
				{{Key: "$set", Value: bson.D{{Key: "tenant_id", Value: "bravo"}}}},
				{{Key: "$set", Value: bson.D{{Key: "tenant_id", Value: "alpha"}}}},
				{{Key: "$unset", Value: bson.D{{Key: "tenant_id", Value: ""}}}},
				{{Key: "$rename", Value: bson.D{{Key: "name", Value: "tenant_id"}}}},
				{{Key: "$rename", Value: bson.D{{Key: "tenant_id", Value: "owner"}}}},
			} {
				_, err := p.a.UpdateOne(ctx, bson.D{}, u)
				refused("UpdateOne update "+str(u), err)
			}
			if _, err := p.a.UpdateOne(ctx, bson.D{}, bson.D{{Key: "name", Value: "w"}}); err == nil {
				t.Error("UpdateOne with a replacement document for an update: no error")
			}

			// Documents naming bravo are refused; one naming alpha, or none, is alpha's.
			refused("InsertOne tenant_id bravo", p.a.InsertOne(ctx, thing{ID: "id-new", Name: "new", Tenant: "bravo"}))
			refused("InsertOne tenant_id 7", p.a.InsertOne(ctx, bson.D{{Key: "_id", Value: "id-new"}, {Key: "tenant_id", Value: 7}}))
			_, err := p.a.ReplaceOne(ctx, bson.D{{Key: "_id", Value: "id-x"}}, thing{ID: "id-x", Name: "x", Tenant: "bravo"})
			refused("ReplaceOne tenant_id bravo", err)
			if err := p.a.InsertOne(ctx, thing{ID: "id-w", Name: "w", Tenant: "alpha"}); err != nil {
				t.Errorf("InsertOne tenant_id alpha: %v", err)
			}
			// A name is unique per tenant: alpha may not repeat its own, whoever else has it.
			if err := p.a.InsertOne(ctx, thing{ID: "id-x2", Name: "x"}); !store.IsDuplicateKey(err) {
				t.Errorf("InsertOne of alpha's name again: %v, want a duplicate key", err)
			}
			if layout == store.LayoutShared {
				// bravo's id in the shared collection: refused by _id, bravo's document kept.
				if err := p.a.InsertOne(ctx, thing{ID: p.bIDs[0], Name: "v"}); !store.IsDuplicateKey(err) {
					t.Errorf("InsertOne of bravo's id for alpha: %v, want a duplicate key", err)
				}
			}

			for _, pipe := range []mongo.Pipeline{
				{{{Key: "$lookup", Value: bson.D{{Key: "from", Value: "things"}, {Key: "localField", Value: "name"}, {Key: "foreignField", Value: "name"}, {Key: "as", Value: "all"}}}}},
				{{{Key: "$unionWith", Value: "things"}}},
				{{{Key: "$out", Value: "stolen"}}},
				{{{Key: "$facet", Value: bson.D{{Key: "x", Value: bson.A{bson.D{{Key: "$match", Value: bson.D{}}}}}}}}},
			} {
				_, err := p.a.Aggregate(ctx, pipe)
				refused("Aggregate "+str(pipe[0]), err)
			}
			cur, err := p.a.Aggregate(ctx, mongo.Pipeline{{{Key: "$match", Value: bson.D{}}}, {{Key: "$sort", Value: bson.D{{Key: "_id", Value: 1}}}}})
			if err != nil {
				t.Fatal(err)
			}
			var agg []thing
			if err := cur.All(ctx, &agg); err != nil {
				t.Fatal(err)
			}
			if len(agg) != 4 {
				t.Errorf("Aggregate for alpha saw %d documents, want alpha's 4: %+v", len(agg), agg)
			}
			for _, d := range agg {
				if d.Tenant != "alpha" {
					t.Errorf("Aggregate for alpha returned %+v", d)
				}
			}

			// Writes with filters that match bravo's documents by name or id change alpha's only.
			if _, err := p.a.UpdateOne(ctx, bson.D{{Key: "_id", Value: p.bIDs[1]}}, bson.D{{Key: "$set", Value: bson.D{{Key: "n", Value: 99}}}}); err != nil {
				t.Fatal(err)
			}
			var u thing
			if err := p.a.FindOneAndUpdate(ctx, bson.D{{Key: "name", Value: "y"}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}}, &u); err != nil || u.Tenant != "alpha" {
				t.Errorf("FindOneAndUpdate for alpha: %+v, %v", u, err)
			}
			if _, err := p.a.ReplaceOne(ctx, bson.D{{Key: "name", Value: "z"}}, thing{ID: "id-z", Name: "z", N: 50}); err != nil {
				t.Errorf("ReplaceOne: %v", err)
			}
			p.untouched(t)
			if _, err := p.a.DeleteOne(ctx, bson.D{{Key: "_id", Value: p.bIDs[2]}}); err != nil {
				t.Fatal(err)
			}
			left, err := p.a.CountDocuments(ctx, bson.D{})
			if err != nil {
				t.Fatal(err)
			}
			res, err := p.a.DeleteMany(ctx, bson.D{})
			if err != nil || res.DeletedCount != left || left < 3 {
				t.Errorf("DeleteMany for alpha: %+v, %v; want alpha's %d deleted", res, err, left)
			}
			p.untouched(t)
		})
	}
}

func str(v any) string {
	b, err := bson.MarshalExtJSON(v, false, false)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// TestScoped_IndexesLedByTenant: in the shared layout every index of a per-tenant collection
// starts with tenant_id; in the collections layout EnsureShared creates nothing and creating a
// tenant creates its collection, where in the shared layout it creates none.
func TestScoped_IndexesLedByTenant(t *testing.T) {
	ctx := context.Background()
	for _, layout := range store.Layouts {
		t.Run(string(layout), func(t *testing.T) {
			db := testenv.DB(t)
			if err := db.EnsureShared(ctx, layout, "things", store.Index{Keys: []string{"name"}, Unique: true}, store.Index{Keys: []string{"a", "b"}}); err != nil {
				t.Fatal(err)
			}
			// The main database and alpha's own (the same unless tenants are spread).
			list := func() []string {
				names, err := db.Database.ListCollectionNames(ctx, bson.D{})
				if err != nil {
					t.Fatal(err)
				}
				if home := db.C(store.TenantCollection("alpha", "things")).Database(); home.Name() != db.Database.Name() {
					more, err := home.ListCollectionNames(ctx, bson.D{})
					if err != nil {
						t.Fatal(err)
					}
					names = append(names, more...)
				}
				return names
			}
			before := list()
			if err := db.EnsureTenant(ctx, layout, "alpha", "things", store.Index{Keys: []string{"name"}, Unique: true}); err != nil {
				t.Fatal(err)
			}
			after := list()
			if layout == store.LayoutCollections {
				if len(before) != 0 || len(after) != 1 || after[0] != "t_alpha_things" {
					t.Fatalf("collections before/after creating a tenant: %v / %v", before, after)
				}
				return
			}
			if len(before) != 1 || len(after) != 1 {
				t.Fatalf("collections before/after creating a tenant: %v / %v", before, after)
			}
			cur, err := db.C("things").Indexes().List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var ixs []struct {
				Name   string `bson:"name"`
				Key    bson.D `bson:"key"`
				Unique bool   `bson:"unique"`
			}
			if err := cur.All(ctx, &ixs); err != nil {
				t.Fatal(err)
			}
			if len(ixs) != 3 {
				t.Errorf("indexes: %+v, want _id and two more", ixs)
			}
			for _, ix := range ixs {
				if ix.Name != "_id_" && (len(ix.Key) < 2 || ix.Key[0].Key != "tenant_id") {
					t.Errorf("index %s is not led by tenant_id: %v", ix.Name, ix.Key)
				}
				if ix.Key[len(ix.Key)-1].Key == "name" && !ix.Unique {
					t.Errorf("index %s lost its uniqueness", ix.Name)
				}
			}
		})
	}
}

// TestCheckLayout_RefusesTheOtherLayout: a database holding t_<tenant>_users refuses the shared
// layout, one holding the shared collections refuses the collections layout, and an empty one
// takes either.
func TestCheckLayout_RefusesTheOtherLayout(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	for _, l := range store.Layouts {
		if err := db.CheckLayout(ctx, l); err != nil {
			t.Errorf("empty database, %s: %v", l, err)
		}
	}
	if err := db.EnsureTenant(ctx, store.LayoutCollections, "acme", store.SuffixUsers); err != nil {
		t.Fatal(err)
	}
	if err := db.CheckLayout(ctx, store.LayoutCollections); err != nil {
		t.Errorf("collections over collections: %v", err)
	}
	err := db.CheckLayout(ctx, store.LayoutShared)
	if err == nil || !strings.Contains(err.Error(), "tenant_layout is shared") || !strings.Contains(err.Error(), "collections layout") {
		t.Errorf("shared over t_acme_users: %v", err)
	}

	shared := testenv.DB(t)
	if err := shared.EnsureShared(ctx, store.LayoutShared, store.SuffixAudit); err != nil {
		t.Fatal(err)
	}
	if err := shared.CheckLayout(ctx, store.LayoutShared); err != nil {
		t.Errorf("shared over shared: %v", err)
	}
	err = shared.CheckLayout(ctx, store.LayoutCollections)
	if err == nil || !strings.Contains(err.Error(), "tenant_layout is collections") || !strings.Contains(err.Error(), "shared layout") {
		t.Errorf("collections over a shared audit collection: %v", err)
	}
	if l, found, err := shared.DetectLayout(ctx); err != nil || !found || l != store.LayoutShared {
		t.Errorf("DetectLayout = %s, %v, %v", l, found, err)
	}
}

func TestParseLayout(t *testing.T) {
	for in, want := range map[string]store.Layout{"": store.LayoutCollections, "collections": store.LayoutCollections, "shared": store.LayoutShared} {
		if got, err := store.ParseLayout(in); err != nil || got != want {
			t.Errorf("ParseLayout(%q) = %s, %v", in, got, err)
		}
	}
	for _, in := range []string{"Shared", "per-tenant", " shared"} {
		if _, err := store.ParseLayout(in); err == nil {
			t.Errorf("ParseLayout(%q): no error", in)
		}
	}
}
