package store

import (
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/mongo/readpref"
)

// TestOptions_ReachTheDriver: each setting lands in the driver's client options, overriding
// the URI's, and a zero field leaves the URI's (or the driver's) value alone.
func TestOptions_ReachTheDriver(t *testing.T) {
	uri := "mongodb://127.0.0.1:1/?maxPoolSize=7&connectTimeoutMS=1000&readPreference=nearest"
	o := Options{PoolSize: 12, ConnectTimeout: 3 * time.Second, ServerSelectionTimeout: 4 * time.Second, ReadPreference: "secondaryPreferred"}
	got, err := o.client(uri)
	if err != nil {
		t.Fatal(err)
	}
	if *got.MaxPoolSize != 12 || *got.ConnectTimeout != 3*time.Second || *got.ServerSelectionTimeout != 4*time.Second {
		t.Errorf("pool %d, connect %v, selection %v; want 12, 3s, 4s", *got.MaxPoolSize, *got.ConnectTimeout, *got.ServerSelectionTimeout)
	}
	if got.ReadPreference.Mode() != readpref.SecondaryPreferredMode {
		t.Errorf("read preference %v, want secondaryPreferred", got.ReadPreference.Mode())
	}

	kept, err := Options{}.client(uri)
	if err != nil {
		t.Fatal(err)
	}
	if *kept.MaxPoolSize != 7 || *kept.ConnectTimeout != time.Second || kept.ReadPreference.Mode() != readpref.NearestMode {
		t.Errorf("zero Options changed the URI's settings: pool %d, connect %v, read %v", *kept.MaxPoolSize, *kept.ConnectTimeout, kept.ReadPreference.Mode())
	}

	for _, bad := range []string{"Primary", "secondaries", "primary "} {
		if _, err := (Options{ReadPreference: bad}).client(uri); err == nil || !strings.Contains(err.Error(), "read preference") {
			t.Errorf("read preference %q: error %v, want a refusal", bad, err)
		}
	}
}

// TestConnectWith_ServerSelectionTimeoutBoundsTheWait: with no server at the address,
// ConnectWith gives up after about the server-selection timeout, not the driver's 30s.
func TestConnectWith_ServerSelectionTimeoutBoundsTheWait(t *testing.T) {
	start := time.Now()
	_, err := ConnectWith(t.Context(), "mongodb://127.0.0.1:1/?directConnection=true", "x",
		Options{ConnectTimeout: 200 * time.Millisecond, ServerSelectionTimeout: 300 * time.Millisecond})
	if err == nil {
		t.Fatal("connected to nothing")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("gave up after %v, want about 300ms", d)
	}
}
