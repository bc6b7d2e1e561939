package api

import (
	"context"
	"net/http"
	"time"
)

type planView struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Rate        string `json:"rate"`
	Burst       int64  `json:"burst"`
	Quota       int64  `json:"quota,omitempty"`
	Purchasable bool   `json:"purchasable"`
	Default     bool   `json:"default"`
}

func (a *API) listPlans(w http.ResponseWriter, r *http.Request, _ *call) error {
	def := a.Plans.Default().ID
	all := a.Plans.All()
	out := make([]planView, len(all))
	for i, p := range all {
		out[i] = planView{ID: p.ID, Name: p.Name, Rate: p.Rate.String(), Burst: p.Burst, Quota: p.Quota,
			Purchasable: p.Purchasable(), Default: p.ID == def}
	}
	return writeJSON(w, http.StatusOK, planList{Plans: out})
}

func (a *API) healthz(w http.ResponseWriter, _ *http.Request, _ *call) error {
	return writeJSON(w, http.StatusOK, healthResponse{Status: "ok"})
}

// readyz answers 200 only when every dependency answers within two seconds.
func (a *API) readyz(w http.ResponseWriter, r *http.Request, _ *call) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{}
	status := http.StatusOK
	if a.Ready != nil {
		for name, err := range a.Ready(ctx) {
			checks[name] = "ok"
			if err != nil {
				checks[name] = "unavailable"
				status = http.StatusServiceUnavailable
			}
		}
	}
	word := "ready"
	if status != http.StatusOK {
		word = "not_ready"
	}
	return writeJSON(w, status, readyResponse{Status: word, Checks: checks})
}
