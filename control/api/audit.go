package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/saasgate/saasgate/control/audit"
	"github.com/saasgate/saasgate/control/errs"
	"github.com/saasgate/saasgate/control/identity"
)

// auditFilter reads the query of the audit-log routes.
func auditFilter(r *http.Request) (audit.Filter, error) {
	q := r.URL.Query()
	f := audit.Filter{Action: q.Get("action"), Actor: q.Get("actor"), Outcome: q.Get("outcome")}
	for _, tv := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := q.Get(tv.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return f, errs.Ef(errs.KindBadRequest, "bad_request", "Query parameter %s must be an RFC 3339 time.", tv.name)
			}
			*tv.dst = t
		}
	}
	if v := q.Get("cursor"); v != "" {
		seq, err := audit.DecodeCursor(v)
		if err != nil {
			return f, err
		}
		f.Before = seq
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > audit.MaxPageSize {
			return f, errs.Ef(errs.KindBadRequest, "bad_request", "Query parameter limit must be between 1 and %d.", audit.MaxPageSize)
		}
		f.Limit = n
	}
	return f, nil
}

// auditCaller is the caller as stored: which entries a user may read depends on a role their
// token may hold from before a change.
func (a *API) auditCaller(r *http.Request, c *call) (identity.Principal, error) {
	return a.Accounts.CurrentPrincipal(r.Context(), c.principal)
}

func (a *API) listAuditLogs(w http.ResponseWriter, r *http.Request, c *call) error {
	f, err := auditFilter(r)
	if err != nil {
		return err
	}
	p, err := a.auditCaller(r, c)
	if err != nil {
		return err
	}
	page, err := a.Audit.List(r.Context(), p, r.PathValue("id"), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page)
}

// exportAuditLogs streams NDJSON, one entry a line, newest first. The status is sent with the
// first line, so a refusal is still a problem+json answer; an error after it cuts the stream.
func (a *API) exportAuditLogs(w http.ResponseWriter, r *http.Request, c *call) error {
	f, err := auditFilter(r)
	if err != nil {
		return err
	}
	p, err := a.auditCaller(r, c)
	if err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	started, lines := false, 0
	start := func() {
		if !started {
			started = true
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusOK)
		}
	}
	err = a.Audit.Export(r.Context(), p, r.PathValue("id"), f, func(e *audit.Entry) error {
		start()
		if err := enc.Encode(e); err != nil {
			return err
		}
		if lines++; lines%100 == 0 {
			_ = rc.Flush()
		}
		return nil
	})
	if err != nil && started {
		a.Logger.Warn("audit export cut short", zap.String("tenant", r.PathValue("id")), zap.Error(err))
		return nil
	}
	if err != nil {
		return err
	}
	start()
	return nil
}

func (a *API) verifyAuditLog(w http.ResponseWriter, r *http.Request, c *call) error {
	v, err := a.Audit.VerifyFor(r.Context(), c.principal, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}
