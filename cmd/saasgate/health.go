package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
)

// The image is distroless (no shell, no curl), so Docker's HEALTHCHECK runs the binary itself.
// --host exists because the saas_api site is matched by host name, and a probe dials 127.0.0.1.
func init() {
	fs := flag.NewFlagSet("health", flag.ExitOnError)
	fs.String("url", "http://127.0.0.1:8080/healthz", "URL to GET")
	fs.String("host", "", "Host header to send (the saas_api site's host)")
	fs.Duration("timeout", 3*time.Second, "give up after this long")
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "health",
		Usage: "[--url <url>] [--host <host>] [--timeout <duration>]",
		Short: "Exits 0 when the gateway's health endpoint answers 200 (for container health checks)",
		Flags: fs,
		Func:  cmdHealth,
	})
}

func cmdHealth(fl caddycmd.Flags) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), fl.Duration("timeout"))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fl.String("url"), nil)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	if h := fl.String("host"); h != "" {
		req.Host = h
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("%s answered %s", req.URL, resp.Status)
	}
	return caddy.ExitCodeSuccess, nil
}
