package api

import "github.com/saasgate/saasgate/control/identity"

// Route is one registered route: its ServeMux pattern ("PATCH /tenants/{id}") and the lowest
// role it admits ("" for anonymous routes).
type Route struct {
	Pattern string
	MinRole identity.Role
}

// Routes lists every route in the order routes.go registers them. It is read from the
// registrations themselves, so tests that walk it (the BOLA and BFLA sweeps) cover a new
// route without anyone listing it twice.
func Routes() []Route {
	return append([]Route(nil), New(&API{}).table...)
}
