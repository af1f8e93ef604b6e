package pgstore_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store/pgstore"
)

// An engine instance keeping its state in PostgreSQL. Every instance of the
// pipeline (one per host) opens a Store on the same database and schema and
// names itself in Config.Instance; the store's lease lets one of them run a
// cycle at a time. (This example needs a server, so it is compiled but not
// run by go test; TestThreeEngines runs the same setup.)
func Example() {
	ctx := context.Background()
	st, err := pgstore.Open(ctx, os.Getenv("CONCORD_TEST_POSTGRES_DSN"), pgstore.WithSchema("concord_example"))
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()

	crm, shop := fake.New("crm"), fake.New("shop")
	engine, err := recsync.New(recsync.Config{
		Systems:  []recsync.System{{ID: "crm", Connector: crm}, {ID: "shop", Connector: shop}},
		Resolver: resolve.LastWriterWins(),
		Store:    st,
		Instance: "host-1",
	})
	if err != nil {
		log.Fatal(err)
	}
	crm.Edit("c1", map[string]any{"email": "ada@example.com"})
	if _, err := engine.RunCycle(ctx); err != nil {
		log.Fatal(err)
	}
	r, _ := shop.Record("c1")
	fmt.Println(r.Fields["email"])
}
