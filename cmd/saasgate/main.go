// Command saasgate is Caddy with the standard modules and saasgate's own: every Caddy command
// (run, adapt, validate, reload, list-modules, ...) works as usual.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/saasgate/saasgate/caddymodule"
)

func main() { caddycmd.Main() }
