package testenv_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
	"go.mongodb.org/mongo-driver/bson"

	"github.com/saasgate/saasgate/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestDB_InsertedDocumentReadsBackAndStaysInItsDatabase(t *testing.T) {
	a, b := testenv.DB(t), testenv.DB(t)
	if a.Database.Name() == b.Database.Name() {
		t.Fatalf("two DB calls share database %s", a.Database.Name())
	}
	if _, err := a.C("things").InsertOne(ctx(t), bson.M{"_id": "x", "n": 7}); err != nil {
		t.Fatal(err)
	}
	var got struct {
		ID string `bson:"_id"`
		N  int    `bson:"n"`
	}
	if err := a.C("things").FindOne(ctx(t), bson.M{"_id": "x"}).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.ID != "x" || got.N != 7 {
		t.Errorf("read back %+v, want {x 7}", got)
	}
	n, err := b.C("things").CountDocuments(ctx(t), bson.M{})
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("the other test database holds %d documents, want 0", n)
	}
}

func TestDatabase_NamesAreValidAndUnique(t *testing.T) {
	valid := regexp.MustCompile(`^[a-zA-Z0-9_]{1,63}$`)
	for _, name := range []string{"short", strings.Repeat("very long/sub test name ", 10), "ünïcode.dots$"} {
		t.Run(name, func(t *testing.T) {
			first, second := testenv.Database(t), testenv.Database(t)
			for _, db := range []string{first, second} {
				if !valid.MatchString(db) {
					t.Errorf("database name %q is not a valid MongoDB/FerretDB name", db)
				}
			}
			if first == second {
				t.Errorf("two calls returned the same name %q", first)
			}
		})
	}
}

func TestKeyPrefix_KeysAreDeletedWhenTheTestEnds(t *testing.T) {
	c := testenv.RedisClient(t)
	var prefix string
	t.Run("writer", func(t *testing.T) {
		prefix = testenv.KeyPrefix(t)
		if other := testenv.KeyPrefix(t); other == prefix {
			t.Fatalf("two KeyPrefix calls returned %q", prefix)
		}
		for i := range 3 {
			if err := c.Set(ctx(t), fmt.Sprintf("%sk%d", prefix, i), "v", time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
		}
		got, err := c.Get(ctx(t), prefix+"k1").Result()
		if err != nil || got != "v" {
			t.Fatalf("GET %sk1 = %q, %v; want v", prefix, got, err)
		}
	})
	keys, err := c.Keys(ctx(t), prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Errorf("keys left after the test ended: %v", keys)
	}
}

func TestEchoUpstream_AnswersWithAndRecordsTheRequest(t *testing.T) {
	up := testenv.EchoUpstream(t)
	req, err := http.NewRequest(http.MethodPost, up.URL+"/a/b?q=1", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Probe", "yes")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var echoed testenv.Request
	if err := json.NewDecoder(resp.Body).Decode(&echoed); err != nil {
		t.Fatal(err)
	}
	recorded := up.Last(t)
	for _, got := range []testenv.Request{echoed, recorded} {
		if got.Method != http.MethodPost || got.Path != "/a/b" || got.RawQuery != "q=1" ||
			got.Host != up.Addr || got.Body != "payload" || got.Header.Get("X-Probe") != "yes" {
			t.Errorf("request seen as %+v", got)
		}
	}
	if up.Count() != 1 {
		t.Errorf("recorded %d requests, want 1", up.Count())
	}
	up.Reset()
	if len(up.Requests()) != 0 {
		t.Errorf("requests left after Reset: %v", up.Requests())
	}
}

func proxyCaddyfile(port int, upstream, extra string) string {
	return "{\n" + testenv.CaddyGlobal() + "}\n\n" +
		fmt.Sprintf("http://:%d {\n\tbind 127.0.0.1\n\treverse_proxy %s {\n\t\theader_up X-Gateway test\n%s\t}\n}\n",
			port, upstream, extra)
}

func get(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
}

func TestStartCaddy_ReverseProxiesToTheUpstreamAndReloads(t *testing.T) {
	up := testenv.EchoUpstream(t)
	port := testenv.FreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	testenv.StartCaddy(t, proxyCaddyfile(port, up.Addr, ""))
	testenv.WaitHTTP(t, base)
	up.Reset()

	get(t, base+"/hello?x=1")
	got := up.Last(t)
	if got.Path != "/hello" || got.RawQuery != "x=1" || got.Header.Get("X-Gateway") != "test" ||
		got.Header.Get("X-Forwarded-For") == "" {
		t.Errorf("the upstream saw %+v", got)
	}

	testenv.ReloadCaddy(t, proxyCaddyfile(port, up.Addr, "\t\theader_up X-Reloaded yes\n"))
	get(t, base+"/again")
	if got := up.Last(t); got.Header.Get("X-Reloaded") != "yes" {
		t.Errorf("after reload the upstream saw headers %v", got.Header)
	}
}

func TestStartSaasgate_ServesAndStopsGracefully(t *testing.T) {
	up := testenv.EchoUpstream(t)
	port := testenv.FreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	p := testenv.StartSaasgate(t, proxyCaddyfile(port, up.Addr, ""))
	p.WaitHTTP(t, base)

	get(t, base+"/via-subprocess")
	if got := up.Last(t); got.Path != "/via-subprocess" || got.Header.Get("X-Gateway") != "test" {
		t.Errorf("the upstream saw %+v", got)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("graceful stop: %v\n%s", err, p.Output())
	}
}

func TestStripeMock_AnswersTheStripeAPI(t *testing.T) {
	base := testenv.StripeMock(t)
	req, _ := http.NewRequest("POST", base+"/v1/customers", strings.NewReader("metadata[tenant_id]=acme"))
	req.Header.Set("Authorization", "Bearer "+testenv.StripeMockKey)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c struct {
		ID     string `json:"id"`
		Object string `json:"object"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != http.StatusOK || c.Object != "customer" || !strings.HasPrefix(c.ID, "cus_") {
		t.Fatalf("POST /v1/customers = %d %+v, %v", resp.StatusCode, c, err)
	}
	if base2 := testenv.StripeMock(t); base2 != base {
		t.Fatal("one stripe-mock per test process")
	}
}
