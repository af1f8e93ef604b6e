package storetest_test

import (
	"testing"

	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/storetest"
)

func TestMemoryStore(t *testing.T) {
	storetest.Run(t, func(testing.TB) recsync.Store { return recsync.NewMemoryStore() })
}
