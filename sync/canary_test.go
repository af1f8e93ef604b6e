package sync_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/concordsync/concord/internal/canary"
	"github.com/concordsync/concord/sync/store/boltstore"
)

// A canary in a sensitive field appears in no output of the engine and
// nowhere in the bolt file; key rotation and Reseal (see package canary).
// pgstore runs the same with a dump of its tables.
func TestSensitiveCanariesOnBolt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "concord.db")
	st, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	canary.Run(t, st, func(t *testing.T) []byte {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}
