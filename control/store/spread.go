package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
)

// SpreadDatabases is how many databases the embedded store spreads the tenants' own
// collections over. It is fixed at install: a tenant's collections are found by the hash of
// its id modulo this number.
const SpreadDatabases = 64

// SpreadTenants decides where the tenants' own collections (t_<tenant>_*) live: in the
// database, or spread over SpreadDatabases databases named <database>_t00 to <database>_t63, a
// tenant's all in one, chosen by its id (the platform collections stay in the database).
// Spreading is for FerretDB, where a database is one SQLite file and the cost of a schema
// change (every collection and index made) grows with the tables and indexes in the file: every
// other connection to the file reads the whole schema again, so at 5,000 tenants in one file a
// tenant took hundreds of milliseconds to create and a tenant lookup tens. MongoDB's cost per
// collection does not depend on the database holding it, and it keeps one.
//
// The data decides first, so every process reaching the store agrees whoever started it: a
// store whose database holds the system tenant's collections was made before tenants were
// spread, and keeps them there; one whose system tenant sits in its spread database is spread.
// A new store (neither) is spread when the server is FerretDB. ConnectWith calls it; calling it
// again decides again from what the store holds then.
func (db *DB) SpreadTenants(ctx context.Context) (bool, error) {
	system := TenantCollection(SystemTenant, SuffixUsers)
	legacy, err := db.Database.ListCollectionNames(ctx, bson.D{{Key: "name", Value: system}})
	if err != nil {
		return false, fmt.Errorf("looking for tenant collections in %s: %w", db.Database.Name(), err)
	}
	spread := make([]*mongo.Database, SpreadDatabases)
	for i := range spread {
		spread[i] = db.Client.Database(SpreadDatabase(db.Database.Name(), i))
	}
	db.spread = nil
	if len(legacy) > 0 {
		return false, nil
	}
	ferret, err := db.FerretDB(ctx)
	if err != nil {
		return false, err
	}
	if !ferret {
		// MongoDB keeps a new store in one database; a spread store brought over from FerretDB
		// keeps its layout. A user whose role reaches only the database cannot list the
		// others, and so has no spread store there.
		home := spread[spreadIndex(SystemTenant)]
		found, err := home.ListCollectionNames(ctx, bson.D{{Key: "name", Value: system}})
		var ce mongo.CommandError
		switch {
		case errors.As(err, &ce) && ce.Code == codeUnauthorized:
			return false, nil
		case err != nil:
			return false, fmt.Errorf("looking for tenant collections in %s: %w", home.Name(), err)
		case len(found) == 0:
			return false, nil
		}
	}
	db.spread = spread
	return true, nil
}

// codeUnauthorized is MongoDB's error code for a command the user's roles do not allow.
const codeUnauthorized = 13

// FerretDB reports whether the server is FerretDB rather than MongoDB (its buildInfo names its
// own version beside the MongoDB version it speaks for).
func (db *DB) FerretDB(ctx context.Context) (bool, error) {
	var info bson.M
	if err := db.Client.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return false, fmt.Errorf("asking the server for its build: %w", err)
	}
	_, ok := info["ferretdbVersion"]
	return ok, nil
}

// CollectionNames lists the collections of the database and of the databases its tenants are
// spread over.
func (db *DB) CollectionNames(ctx context.Context) ([]string, error) {
	names, err := db.Database.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("listing collections: %w", err)
	}
	if db.spread == nil {
		return names, nil
	}
	all, err := db.Client.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("listing databases: %w", err)
	}
	for _, d := range db.spread {
		if !slices.Contains(all, d.Name()) {
			continue
		}
		more, err := d.ListCollectionNames(ctx, bson.D{})
		if err != nil {
			return nil, fmt.Errorf("listing collections of %s: %w", d.Name(), err)
		}
		names = append(names, more...)
	}
	return names, nil
}

// Drop drops the database and the databases its tenants are spread over.
func (db *DB) Drop(ctx context.Context) error {
	names, err := db.Client.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return fmt.Errorf("listing databases: %w", err)
	}
	spread := make(map[string]bool, SpreadDatabases)
	for i := range SpreadDatabases {
		spread[SpreadDatabase(db.Database.Name(), i)] = true
	}
	for _, name := range names {
		if spread[name] {
			if err := db.Client.Database(name).Drop(ctx); err != nil {
				return fmt.Errorf("dropping %s: %w", name, err)
			}
		}
	}
	return db.Database.Drop(ctx)
}

// SpreadDatabase names the i-th database of SpreadTenants: database names are at most 63
// bytes, so a long one is cut to make room for the suffix.
func SpreadDatabase(database string, i int) string {
	if len(database) > 59 {
		database = database[:59]
	}
	return fmt.Sprintf("%s_t%02d", database, i)
}

// Spread reports whether the tenants' collections are spread over several databases.
func (db *DB) Spread() bool { return db.spread != nil }

// databaseOf returns the database holding the collection name.
func (db *DB) databaseOf(name string) *mongo.Database {
	if db.spread == nil || !strings.HasPrefix(name, "t_") {
		return db.Database
	}
	id := name[2:]
	if end := strings.IndexByte(id, '_'); end > 0 {
		id = id[:end] // tenant ids have no underscore; suffixes may
	}
	return db.spread[spreadIndex(id)]
}

// spreadIndex is the spread database of a tenant's collections.
func spreadIndex(tenantID string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(tenantID))
	return int(h.Sum32() % SpreadDatabases)
}
