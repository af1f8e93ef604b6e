package audittest_test

import (
	"context"
	"fmt"

	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/audit/audittest"
)

func ExampleRecorder() {
	rec := audittest.New()
	var sink audit.Sink = rec // what the engine would be given

	_ = sink.Emit(context.Background(), []audit.Event{
		{Kind: audit.EditObserved, System: "portal", Key: "cust-42", Unit: "email"},
		{Kind: audit.MergeDecided, System: "portal", Key: "cust-42", Unit: "email", Rule: "fast-forward"},
		{Kind: audit.WriteSucceeded, System: "crm", Key: "cust-42", Fields: []string{"mail"}},
		{Kind: audit.WriteFailed, System: "erp", Key: "cust-42", ErrorClass: "transient"},
	})

	fmt.Println("recorded:", rec.Len())
	for _, ev := range rec.Filter(audittest.Match{Kind: audit.MergeDecided, Key: "cust-42"}) {
		fmt.Println("merged", ev.Unit, "by", ev.Rule)
	}
	fmt.Println("failed writes:", rec.Count(audittest.Match{Kind: audit.WriteFailed}))
	transient := rec.FilterFunc(func(ev audit.Event) bool { return ev.ErrorClass == "transient" })
	fmt.Println("transient failure in:", transient[0].System)

	// In a test, the Require helpers fail with a listing of what was
	// recorded:
	//
	//	ev := rec.Require(t, audittest.Match{Kind: audit.WriteSucceeded, System: "crm"})
	//	rec.RequireNone(t, audittest.Match{Kind: audit.ConflictDetected})
	//	rec.RequireCount(t, audittest.Match{Kind: audit.WriteFailed}, 1)

	// Output:
	// recorded: 4
	// merged email by fast-forward
	// failed writes: 1
	// transient failure in: erp
}
