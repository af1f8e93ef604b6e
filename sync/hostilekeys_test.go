package sync_test

import (
	"path/filepath"
	"testing"

	"github.com/concordsync/concord/internal/enginetest"
	"github.com/concordsync/concord/sync/store"
	"github.com/concordsync/concord/sync/store/boltstore"
)

func TestHostileKeysDoNotStopThePipeline(t *testing.T) {
	t.Run("memory", func(t *testing.T) { enginetest.HostileKeys(t, store.NewMemory()) })
	t.Run("bolt", func(t *testing.T) {
		st, err := boltstore.Open(filepath.Join(t.TempDir(), "concord.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		enginetest.HostileKeys(t, st)
	})
}
