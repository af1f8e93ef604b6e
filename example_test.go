package concord_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/concordsync/concord"
)

// Two systems edit a field from the same starting point: neither saw the
// other's edit, so the versions are concurrent: a real conflict.
func ExampleVersion_Compare() {
	const portal, warehouse concord.Actor = 1, 2
	base, _ := concord.Version{}.Inc(portal) // {1:1}: the portal set the address
	a, _ := base.Inc(portal)                 // the portal edits it again
	b, _ := base.Inc(warehouse)              // the warehouse edits it too
	fmt.Println(a, "vs", b, "=", a.Compare(b))
	merged := a.Join(b) // a resolution supersedes both
	fmt.Println(merged, "vs", a, "=", merged.Compare(a))
	// Output:
	// {1:2} vs {1:1,2:1} = concurrent
	// {1:2,2:1} vs {1:2} = after
}

// Whether a field changed never depends on number formatting, time zones
// or map order.
func ExampleEqualValues() {
	paris := time.FixedZone("CET", 3600)
	t := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	fmt.Println(concord.EqualValues(19.90, json.Number("19.9")))
	fmt.Println(concord.EqualValues(t, t.In(paris)))
	fmt.Println(concord.EqualValues(map[string]any{"a": 1, "b": 2}, map[string]any{"b": 2.0, "a": 1}))
	fmt.Println(concord.EqualValues("1", 1))
	// Output:
	// true
	// true
	// true
	// false
}
