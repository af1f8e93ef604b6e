package boltstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store/boltstore"
)

// An engine keeps its state in a file: what it learnt survives a restart.
func Example() {
	dir, err := os.MkdirTemp("", "concord")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "concord.db")
	ctx := context.Background()

	st, err := boltstore.Open(path)
	if err != nil {
		panic(err)
	}
	portal, warehouse := fake.New("portal"), fake.New("warehouse")
	engine, err := recsync.New(recsync.Config{
		Systems:  []recsync.System{{ID: "portal", Connector: portal}, {ID: "warehouse", Connector: warehouse}},
		Resolver: resolve.LastWriterWins(),
		Store:    st,
	})
	if err != nil {
		panic(err)
	}
	portal.Edit("c1", map[string]any{"phone": "+44 1"})
	if _, err := engine.RunCycle(ctx); err != nil {
		panic(err)
	}
	w, _ := warehouse.Record("c1")
	fmt.Println("warehouse:", w.Fields)
	epoch, _ := st.Epoch(ctx)
	if err := st.Close(); err != nil {
		panic(err)
	}

	// The host restarts.
	st, err = boltstore.Open(path)
	if err != nil {
		panic(err)
	}
	defer st.Close()
	states, _ := st.Load(ctx, []string{"c1"}) // the engine's encoding: opaque
	again, _ := st.Epoch(ctx)
	fmt.Println("stored: c1 at revision", states["c1"].Rev)
	fmt.Println("same epoch:", again == epoch, "restored:", st.Restored())
	// Output:
	// warehouse: map[phone:+44 1]
	// stored: c1 at revision 2
	// same epoch: true restored: false
}

// Open refuses a file that is not a store, without touching it.
func ExampleOpen_notAStore() {
	dir, err := os.MkdirTemp("", "concord")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(path, []byte("not a database"), 0o600); err != nil {
		panic(err)
	}
	_, err = boltstore.Open(path)
	fmt.Println(errors.Is(err, boltstore.ErrNotAStore))
	// Output: true
}
