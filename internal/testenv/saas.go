package testenv

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/saasgate/saasgate/control/store"
)

// SaasOptions describes a gateway running the saas app: its `saas` option, its control-API
// site and its tenant sites. Zero fields take the test's own services and free ports.
type SaasOptions struct {
	Global string // more lines of Caddy's global options
	// MongoURI and Database: "" for the test server (Mongo) and a database of the test's own
	// (Database), dropped when the test ends. Replicas sharing a database set both.
	MongoURI, Database string
	// Redis sets redis_url and redis_prefix: RedisURL and RedisPrefix, or, left "", the test
	// Redis (RedisURL) under a key prefix of the test's own (KeyPrefix).
	Redis                 bool
	RedisURL, RedisPrefix string
	Options               string // more lines of the saas option: plans, default_plan, a stripe block, ...
	JWTSecret             string // jwt_secret; "" for the package's JWTSecret
	APIPort               int    // the control-API site's port; 0 for a free one
	APISite               string // more directives of the control-API site
	Sites                 []Site
	Upstream              string // the address UPSTREAM stands for in the sites' bodies
}

// Site is a tenant site, served at http://*.localhost:<port> and http://127.0.0.1:<port> (the
// latter has no subdomain).
type Site struct {
	Name string // its key in Saas.Ports
	Body string // its directives; UPSTREAM is replaced by SaasOptions.Upstream
	Port int    // 0 for a free one
}

// Saas is a configured gateway: Caddyfile is its config, Client talks to its control API.
type Saas struct {
	*Client
	Opts      SaasOptions // with every default filled in
	Ports     map[string]int
	Caddyfile string
}

// NewSaas resolves opts (the test's database, Redis prefix and free ports where they are left
// zero) and writes the gateway's Caddyfile, without starting it: StartSaas runs it in the test
// process, Saas.StartProcess as the built binary. The same opts give the same Caddyfile, so
// a reload (Saas.Reload) changes only what opts change.
func NewSaas(t testing.TB, opts SaasOptions) *Saas {
	t.Helper()
	if opts.MongoURI == "" {
		opts.MongoURI, opts.Database = Mongo(t), Database(t)
		// Registered before the gateway starts, so it runs after the gateway has stopped.
		t.Cleanup(func() { dropDatabase(t, opts.MongoURI, opts.Database) })
	}
	if opts.Redis && opts.RedisURL == "" {
		opts.RedisURL = RedisURL(t)
	}
	if opts.Redis && opts.RedisPrefix == "" {
		opts.RedisPrefix = KeyPrefix(t)
	}
	opts.Sites = append([]Site(nil), opts.Sites...)
	// Every port left to choose is chosen in one call, which holds them all at once: ports
	// chosen one by one can come out the same (each is free again when the next is picked).
	need := 0
	if opts.APIPort == 0 {
		need++
	}
	for _, site := range opts.Sites {
		if site.Port == 0 {
			need++
		}
	}
	free := FreePorts(t, need)
	if opts.APIPort == 0 {
		opts.APIPort, free = free[0], free[1:]
	}
	s := &Saas{Ports: make(map[string]int)}
	for i, site := range opts.Sites {
		if site.Port == 0 {
			opts.Sites[i].Port, free = free[0], free[1:]
		}
		s.Ports[site.Name] = opts.Sites[i].Port
	}
	s.Opts = opts
	s.Client = NewClient(t, fmt.Sprintf("http://127.0.0.1:%d", opts.APIPort))
	s.Caddyfile = opts.caddyfile()
	return s
}

// StartSaas runs the gateway of opts in the test process (StartCaddy) and waits until its
// control plane is ready.
func StartSaas(t testing.TB, opts SaasOptions) *Saas {
	t.Helper()
	s := NewSaas(t, opts)
	StartCaddy(t, s.Caddyfile)
	s.WaitReady(t, 10*time.Second)
	return s
}

// Reload replaces the running config of the in-process gateway with the one of opts (which
// keeps the database, Redis prefix and ports of s), and waits until it is ready.
func (s *Saas) Reload(t testing.TB, opts SaasOptions) {
	t.Helper()
	opts.MongoURI, opts.Database = s.Opts.MongoURI, s.Opts.Database
	opts.RedisURL, opts.RedisPrefix = s.Opts.RedisURL, s.Opts.RedisPrefix
	opts.APIPort = s.Opts.APIPort
	opts.Sites = append([]Site(nil), opts.Sites...)
	for i, site := range opts.Sites {
		if site.Port == 0 {
			opts.Sites[i].Port = s.Ports[site.Name]
		}
	}
	s.Opts, s.Caddyfile = opts, opts.caddyfile()
	ReloadCaddy(t, s.Caddyfile)
	// The old config's servers closed the kept-alive connections; a request on one of them
	// could fail before the client notices.
	s.HC.CloseIdleConnections()
	s.WaitReady(t, 10*time.Second)
}

// StartProcess runs the gateway as the built binary (StartSaasgate) and returns at once: a
// test starting several replicas waits for them together.
func (s *Saas) StartProcess(t testing.TB, env ...string) *Process {
	t.Helper()
	return StartSaasgate(t, s.Caddyfile, env...)
}

func (o SaasOptions) caddyfile() string {
	var b strings.Builder
	fmt.Fprintf(&b, "{\n%s%s\n\tsaas {\n\t\tmongo_uri %q\n\t\tdatabase %s\n", CaddyGlobal(), o.Global, o.MongoURI, o.Database)
	if o.Redis {
		fmt.Fprintf(&b, "\t\tredis_url %s\n\t\tredis_prefix %s\n", o.RedisURL, o.RedisPrefix)
	}
	secret := o.JWTSecret
	if secret == "" {
		secret = JWTSecret
	}
	fmt.Fprintf(&b, "\t\tjwt_secret %s\n\t\tadmin_email %s\n\t\tadmin_password %s\n%s\n\t}\n}\n",
		secret, AdminEmail, AdminPassword, o.Options)
	fmt.Fprintf(&b, "\nhttp://127.0.0.1:%d, http://*.localhost:%d {\n%s\n\tsaas_api\n}\n",
		o.APIPort, o.APIPort, o.APISite)
	for _, s := range o.Sites {
		fmt.Fprintf(&b, "\nhttp://*.localhost:%d, http://127.0.0.1:%d {\n%s\n}\n", s.Port, s.Port,
			strings.ReplaceAll(s.Body, "UPSTREAM", o.Upstream))
	}
	return string(caddyfile.Format([]byte(b.String())))
}

func dropDatabase(t testing.TB, uri, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := store.Connect(ctx, uri, name, 10*time.Second)
	if err != nil {
		t.Errorf("testenv: dropping the test database: %v", err)
		return
	}
	defer db.Close(ctx)
	if err := db.Drop(ctx); err != nil {
		t.Errorf("testenv: dropping database %s: %v", name, err)
	}
}
