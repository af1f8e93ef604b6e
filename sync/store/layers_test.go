package store_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The store layer is a leaf: sync/store imports only the root package,
// connector and the standard library, and the engine's state package never
// imports the engine or a store driver. (River keeps rivertype the same
// way.)
func TestStoreLayerIsALeaf(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	const mod = "github.com/concordsync/concord"
	for pkg, allowed := range map[string][]string{
		mod + "/sync/store":     {mod, mod + "/connector"},
		mod + "/internal/state": {mod, mod + "/connector", mod + "/resolve", mod + "/sync/seal", mod + "/sync/store"},
	} {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if first, _, _ := strings.Cut(dep, "/"); dep == pkg || !strings.Contains(first, ".") {
				continue // itself, or the standard library (crypto/internal/entropy/v1.0.0 among it)
			}
			if !strings.HasPrefix(dep, mod) {
				t.Errorf("%s imports %s, outside the module", pkg, dep)
				continue
			}
			ok := false
			for _, a := range allowed {
				ok = ok || dep == a
			}
			if !ok {
				t.Errorf("%s imports %s; it may import only %v", pkg, dep, allowed)
			}
		}
	}
}
