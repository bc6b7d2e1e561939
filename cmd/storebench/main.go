// Command storebench measures the embedded store (FerretDB over SQLite) along the tail of
// tenants: it starts a control plane on a fresh embedded store, creates tenants up to each
// mark (1,000, 5,000 and 10,000 by default) and there prints what creating one more costs and
// what a tenant lookup that misses the cache costs. Like saasbench, the figures are for
// people, not assertions; it exits non-zero only when it could not run.
//
// What is timed, at each mark:
//   - signup: POST /auth/signup with a new tenant, through the control plane's HTTP API
//     handler (Service.ServeAPI, in process: no network, no Caddy), password hashing included
//     (and timed alone beside it: argon2id's share, which no store change alters);
//   - create: tenant.Manager.Create, the tenant record and its collections (what POST
//     /tenants does before its invitation), one at a time and -concurrent at once;
//   - lookup: tenant.Manager.Lookup, the store read behind a tenant cache miss, of an
//     existing tenant and of an absent id.
//
// The tenants up to a mark are made with tenant.Manager.Create too, the same provisioning
// code, only without the HTTP handler and password hashing around it.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/saasgate/saasgate/control"
	"github.com/saasgate/saasgate/control/account"
	"github.com/saasgate/saasgate/control/identity"
	"github.com/saasgate/saasgate/control/plan"
)

type options struct {
	marks       []int
	samples     int
	concurrent  int
	fillWorkers int
	dir         string
	profile     string
}

func main() {
	var o options
	var marks string
	flag.StringVar(&marks, "marks", "1000,5000,10000", "tenant counts to measure at, increasing")
	flag.IntVar(&o.samples, "samples", 50, "timed operations of each kind at each mark")
	flag.IntVar(&o.concurrent, "concurrent", 8, "creations started at once in the concurrent measure")
	flag.IntVar(&o.fillWorkers, "fill-workers", 4, "creations in flight while filling up to a mark")
	flag.StringVar(&o.dir, "dir", "", "data directory (default: a fresh temporary one, removed at the end); an existing store is reused")
	flag.StringVar(&o.profile, "cpuprofile", "", "write a CPU profile of the timed operations at each mark to this file with .<mark> appended")
	flag.Parse()
	log.SetFlags(0)
	for _, m := range strings.Split(marks, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(m))
		if err != nil || n < 0 || (len(o.marks) > 0 && n <= o.marks[len(o.marks)-1]) {
			log.Fatalf("storebench: -marks %q: want increasing counts", marks)
		}
		o.marks = append(o.marks, n)
	}
	if err := run(o); err != nil {
		log.Fatalf("storebench: %v", err)
	}
}

func run(o options) error {
	ctx := context.Background()
	dir := o.dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "storebench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	b, err := control.OpenBackend(ctx, control.BackendConfig{Database: control.DefaultDatabase, DataDir: dir})
	if err != nil {
		return err
	}
	defer b.Close()
	rt, err := control.OpenRuntime(control.RuntimeConfig{})
	if err != nil {
		return err
	}
	defer rt.Close()
	catalog, err := plan.NewCatalog(nil, "free")
	if err != nil {
		return err
	}
	logger, err := zap.NewProduction(zap.IncreaseLevel(zap.WarnLevel))
	if err != nil {
		return err
	}
	svc, err := control.New(ctx, b, rt, control.Config{
		Logger: logger, DataDir: dir, JWTSecret: []byte("storebench-secret-storebench-secret"), Plans: catalog,
		AuthRates: map[string]control.AuthRate{"signup": {Rate: plan.Rate{Count: 1000, Period: time.Millisecond}}},
	})
	if err != nil {
		return err
	}
	svc.Preload(ctx) // as the gateway does at start: the tenant cache then holds every tenant
	start, err := svc.Tenants.Store.CountByStatus(ctx)
	if err != nil {
		return err
	}
	b0 := &bench{o: o, svc: svc}
	for _, n := range start {
		b0.count += int(n)
	}
	fmt.Printf("embedded store under %s, %d tenants at start\n\n", dir, b0.count)
	fmt.Println("tenants  signup p50/p99       (password hash p50/p99)  create p50/p99       create x" + strconv.Itoa(o.concurrent) + " p50/p99     lookup hit p50/p99    lookup absent p50/p99   fill")
	for _, mark := range o.marks {
		began := time.Now()
		if err := b0.fill(ctx, mark); err != nil {
			return err
		}
		fill := time.Since(began)
		if err := b0.measure(ctx, mark, fill); err != nil {
			return err
		}
	}
	return nil
}

type bench struct {
	o     options
	svc   *control.Service
	count int // tenants in the store
	next  int // suffix of the next tenant name
}

var actor = identity.Actor{UserID: "storebench", Role: identity.RoleAdmin, IP: "127.0.0.1"}

func (b *bench) name() string {
	b.next++
	return fmt.Sprintf("sb %d %d", time.Now().UnixNano()%1e6, b.next)
}

// fill creates tenants until the store holds mark, fillWorkers at a time.
func (b *bench) fill(ctx context.Context, mark int) error {
	need := mark - b.count
	if need <= 0 {
		return nil
	}
	names := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range b.o.fillWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range names {
				if _, err := b.svc.Tenants.Create(ctx, actor, n); err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, fmt.Errorf("creating tenant %q: %w", n, err))
					mu.Unlock()
				}
			}
		}()
	}
	for range need {
		names <- b.name()
	}
	close(names)
	wg.Wait()
	b.count = mark
	return firstErr
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

func (b *bench) measure(ctx context.Context, mark int, fill time.Duration) error {
	if b.o.profile != "" {
		f, err := os.Create(b.o.profile + "." + strconv.Itoa(mark))
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var signup, hash, create, together, hit, absent []time.Duration
	hasher := account.NewHasher(64)
	for range b.o.samples {
		d, err := b.signup()
		if err != nil {
			return err
		}
		signup = append(signup, d)
		began := time.Now()
		if _, err := hasher.Hash(ctx, "correct horse battery staple"); err != nil {
			return err
		}
		hash = append(hash, time.Since(began))
		began = time.Now()
		if _, err := b.svc.Tenants.Create(ctx, actor, b.name()); err != nil {
			return err
		}
		create = append(create, time.Since(began))
		b.count += 2
	}
	for len(together) < b.o.samples {
		ds := make([]time.Duration, b.o.concurrent)
		errs := make([]error, b.o.concurrent)
		var wg sync.WaitGroup
		for i := range ds {
			name := b.name()
			wg.Add(1)
			go func() {
				defer wg.Done()
				began := time.Now()
				_, errs[i] = b.svc.Tenants.Create(ctx, actor, name)
				ds[i] = time.Since(began)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		together = append(together, ds...)
		b.count += b.o.concurrent
	}
	ids, err := b.svc.Tenants.Store.ListN(ctx, 0)
	if err != nil {
		return err
	}
	for range b.o.samples {
		id := ids[rand.IntN(len(ids))].ID
		began := time.Now()
		if _, err := b.svc.Tenants.Lookup(ctx, id); err != nil {
			return err
		}
		hit = append(hit, time.Since(began))
		began = time.Now()
		if _, err := b.svc.Tenants.Lookup(ctx, "absent-"+strconv.Itoa(rand.IntN(1e9))); err == nil {
			return fmt.Errorf("an absent tenant was found")
		}
		absent = append(absent, time.Since(began))
	}
	fmt.Printf("%-8d %s   %s   %s   %s   %s   %s     %s\n", mark, pair(signup), pair(hash), pair(create), pair(together), pair(hit), pair(absent), fill.Round(time.Second))
	return nil
}

// signup signs a new owner and tenant up through the API handler.
func (b *bench) signup() (time.Duration, error) {
	body, _ := json.Marshal(map[string]string{
		"email": "owner" + strconv.Itoa(b.next) + "@bench.example", "password": "correct horse battery staple", "tenant": b.name(),
	})
	r := httptest.NewRequest(http.MethodPost, "/auth/signup", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	began := time.Now()
	b.svc.ServeAPI(w, r)
	d := time.Since(began)
	if w.Code != http.StatusCreated {
		return 0, fmt.Errorf("signup: %d %s", w.Code, w.Body.String())
	}
	return d, nil
}

func pair(ds []time.Duration) string {
	slices.Sort(ds)
	q := func(p float64) float64 {
		return float64(ds[min(len(ds)-1, int(p*float64(len(ds))))].Microseconds()) / 1000
	}
	return fmt.Sprintf("%7.1f / %7.1f ms", q(0.50), q(0.99))
}
