package billing

import "testing"

// The ordering rule: an event older than the part's version changes nothing, one of the same
// second or newer applies and becomes the version.
func TestApplyIfNewer_LateEventChangesNothing(t *testing.T) {
	for _, tc := range []struct {
		name        string
		version, at int64
		applies     bool
	}{
		{"older", 100, 99, false},
		{"same second", 100, 100, true},
		{"newer", 100, 101, true},
		{"first event", 0, 100, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			version, ran := tc.version, false
			got := applyIfNewer(&version, tc.at, func() { ran = true })
			wantVersion := tc.version
			if tc.applies {
				wantVersion = tc.at
			}
			if got != tc.applies || ran != tc.applies || version != wantVersion {
				t.Errorf("applyIfNewer(%d, at %d) = %v (set ran: %v, version %d); want %v, version %d",
					tc.version, tc.at, got, ran, version, tc.applies, wantVersion)
			}
		})
	}
}
