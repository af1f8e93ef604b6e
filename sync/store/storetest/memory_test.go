package storetest_test

import (
	"testing"
	"time"

	"github.com/concordsync/concord/sync/store"
	"github.com/concordsync/concord/sync/store/storetest"
)

func TestMemory(t *testing.T) {
	storetest.Run(t, func(_ testing.TB, now func() time.Time) store.Store { return store.NewMemory(store.WithClock(now)) })
}
