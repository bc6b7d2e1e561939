package intern_test

import (
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/saasgate/saasgate/internal/intern"
)

// Each distinct string's value is built once and handed out again; past Max distinct strings
// a value is built and returned but not kept, so the table cannot grow without bound.
func TestTable_BuildsOncePerValueAndStaysBounded(t *testing.T) {
	builds := 0
	tab := intern.New(func(s string) string { builds++; return s })
	first := tab.Get(strings.Clone("pro"))
	again := tab.Get(strings.Clone("pro"))
	if first != "pro" || unsafe.StringData(first) != unsafe.StringData(again) || builds != 1 {
		t.Fatalf("two gets of pro: %q, %q, %d builds; want one shared copy, built once", first, again, builds)
	}
	for i := range intern.Max {
		tab.Get("plan-" + strconv.Itoa(i))
	}
	builds = 0
	over := strings.Clone("one-too-many")
	if got := tab.Get(over); got != over || builds != 1 {
		t.Fatalf("past the bound: %q after %d builds", got, builds)
	}
	if tab.Get(strings.Clone("one-too-many")); builds != 2 {
		t.Errorf("a value past the bound was kept: %d builds for two gets, want 2", builds)
	}
	if tab.Get("pro"); builds != 2 {
		t.Errorf("a value kept before the bound was built again")
	}
}
