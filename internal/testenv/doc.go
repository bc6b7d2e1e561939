// Package testenv is the shared test harness: it provides the real services saasgate's tests
// run against (embedded FerretDB or a real MongoDB, Redis, an echoing upstream, an in-process
// Caddy and the built gateway binary as a subprocess) and isolates tests from each other on them.
//
// It is imported only by _test.go files. A package that uses it declares
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// so that the process-wide embedded FerretDB is stopped and its files removed when the tests end.
//
// Services:
//
//   - Mongo, Database, DB: one embedded FerretDB (SQLite backend) per test process, started on
//     first use; SAASGATE_TEST_MONGO_URI points the tests at a real MongoDB instead. Every test
//     gets its own database, dropped when it ends.
//   - RedisURL, KeyPrefix: the Redis at REDIS_URL (default redis://127.0.0.1:6379/0). A missing
//     Redis fails the test with instructions; it never skips. Every test gets its own key prefix,
//     whose keys are deleted when it ends.
//   - EchoUpstream: a loopback HTTP server answering every request with a JSON description of
//     it, and recording what it received.
//   - StartCaddy, ReloadCaddy, CaddyGlobal: the given Caddyfile run by Caddy inside the test
//     process. Caddy's running config is process-global, so one Caddy runs per test process at a
//     time and tests that use it must not call t.Parallel; `make test` runs packages one at a
//     time (-p 1) for the same reason.
//   - StripeMock: one stripe-mock server per test process (the pinned binary `make tools`
//     installs into bin/tools), stopped by Main.
//   - NewSaas, StartSaas, SaasOptions: one builder of a gateway running the saas app (the saas
//     option, the control-API site, tenant sites in front of an upstream) on the test's own
//     database and Redis prefix. StartSaas runs it in the test process; Saas.StartProcess runs
//     it as the built binary, for tests with several replicas, which start them in waves and
//     wait for them together (Caddy's config is process-global, so a replica cannot be
//     in-process).
//   - Client, Response, Scrape, Metrics: one HTTP client of a gateway (problem codes, decoded
//     JSON bodies), the account fixtures on it (Signup, Login, NewOwner, NewTenant, ...) and one
//     parser of its /metrics.
//   - StartSaasgate: the built binary (SAASGATE_BIN, default bin/saasgate; `make build`) run as
//     a subprocess, for tests that need several gateway instances at once.
//   - FreePort, FreePorts, WaitHTTP: loopback ports and readiness polling (internal/proc, which
//     saasbench shares, does the work without a testing.TB).
package testenv
