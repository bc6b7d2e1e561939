package store

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
)

// SpreadDatabases is how many databases the embedded store spreads the tenants' own
// collections over. It is fixed at install: a tenant's collections are found by the hash of
// its id modulo this number.
const SpreadDatabases = 64

// SpreadTenants keeps the tenants' own collections (t_<tenant>_*) in SpreadDatabases
// databases named <database>_t00 to <database>_t63, a tenant's all in one, chosen by its id;
// the platform collections stay in the database. It is for the embedded store, where a
// database is one SQLite file and the cost of a schema change (every collection and index
// made) grows with the number of tables and indexes in the file: every other connection to
// the file reads the whole schema again, so at 5,000 tenants in one file a tenant took
// hundreds of milliseconds to create and a tenant lookup tens.
//
// A store whose database already holds the system tenant's collections was made before
// tenants were spread, and keeps them where they are: SpreadTenants reports false and changes
// nothing. Call it once, right after connecting, before any tenant collection is used.
func (db *DB) SpreadTenants(ctx context.Context) (bool, error) {
	legacy, err := db.Database.ListCollectionNames(ctx, bson.D{{Key: "name", Value: TenantCollection(SystemTenant, SuffixUsers)}})
	if err != nil {
		return false, fmt.Errorf("looking for tenant collections in %s: %w", db.Database.Name(), err)
	}
	if len(legacy) > 0 {
		return false, nil
	}
	db.spread = make([]*mongo.Database, SpreadDatabases)
	for i := range db.spread {
		db.spread[i] = db.Client.Database(SpreadDatabase(db.Database.Name(), i))
	}
	return true, nil
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
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return db.spread[h.Sum32()%uint32(len(db.spread))]
}
