package store_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/concordsync/concord/sync/store"
)

// The audit log is an outbox: entries are committed with the state they
// describe, in one atomic commit, and read back by Seq to be delivered.
// A second writer that appends the same Seq is refused with ErrStale.
func Example_auditOutbox() {
	ctx := context.Background()
	s := store.NewMemory()
	err := s.Commit(ctx, &store.Commit{
		States: []store.State{{Key: "c1", Data: []byte("state of c1")}},
		Audit:  []store.AuditEntry{{Seq: 1, Data: []byte("c1 created")}, {Seq: 2, Data: []byte("c1 sent to erp")}},
		Values: map[string][]byte{"audit/delivered": []byte("0")},
	})
	if err != nil {
		panic(err)
	}
	// Another writer read head 1 a moment ago and appends its entry 2.
	err = s.Commit(ctx, &store.Commit{Audit: []store.AuditEntry{{Seq: 2, Data: []byte("late")}}})
	var seqErr *store.AuditSeqError
	fmt.Println("stale:", errors.Is(err, store.ErrStale), "head:", errors.As(err, &seqErr) && seqErr.Head == 2)

	// A deliverer pages through what it has not delivered yet.
	delivered, _ := s.Value(ctx, "audit/delivered")
	fmt.Printf("delivered up to %s\n", delivered)
	for after := uint64(0); ; {
		page, err := s.AuditEntries(ctx, after, 1)
		if err != nil {
			panic(err)
		}
		if len(page) == 0 {
			break
		}
		fmt.Printf("deliver %d: %s\n", page[0].Seq, page[0].Data)
		after = page[0].Seq
	}
	// Output:
	// stale: true head: true
	// delivered up to 0
	// deliver 1: c1 created
	// deliver 2: c1 sent to erp
}

// Keys pages through every stored record key in byte order, as a pass
// over all records (re-encryption, reconciliation) does.
func ExampleMemory_Keys() {
	ctx := context.Background()
	s := store.NewMemory()
	var states []store.State
	for _, k := range []string{"b", "a", "é", "ab", "B"} {
		states = append(states, store.State{Key: k, Data: []byte{}})
	}
	if err := s.Commit(ctx, &store.Commit{States: states}); err != nil {
		panic(err)
	}
	for after := ""; ; {
		page, err := s.Keys(ctx, after, 2)
		if err != nil {
			panic(err)
		}
		if len(page) == 0 {
			break
		}
		fmt.Println(page)
		after = page[len(page)-1]
	}
	// Output:
	// [B a]
	// [ab b]
	// [é]
}

// Value names are checked by one rule in every store.
func ExampleCheckValueName() {
	for _, name := range []string{"scan/crm", "", "a\x00b"} {
		err := store.CheckValueName(name)
		fmt.Printf("%q: %v\n", name, errors.Is(err, store.ErrInvalidName))
	}
	// Output:
	// "scan/crm": false
	// "": true
	// "a\x00b": true
}

// Dead letters are indexed by record key and by class: the engine asks
// for those of the records a cycle reads, and for the failed merges it
// retries, without listing every dead letter.
func ExampleMemory_DeadLettersOf() {
	ctx := context.Background()
	s := store.NewMemory()
	err := s.Commit(ctx, &store.Commit{DeadLetters: []store.DeadLetter{
		{System: "crm", Key: "c1", Class: "invalid", Data: []byte("c1: email is not an address")},
		{System: "erp", Key: "c2", Class: "merge", Data: []byte("c2: resolver failed")},
		{System: "erp", Key: "c1", Class: "merge", Data: []byte("c1: resolver failed")},
	}})
	if err != nil {
		panic(err)
	}
	of, err := s.DeadLettersOf(ctx, []string{"c1", "c9", "c1"})
	if err != nil {
		panic(err)
	}
	for _, d := range of {
		fmt.Printf("of c1: %d %s\n", d.ID, d.Data)
	}
	merges, err := s.DeadLettersOfClass(ctx, "merge")
	if err != nil {
		panic(err)
	}
	for _, d := range merges {
		fmt.Printf("merge: %d %s\n", d.ID, d.Data)
	}
	// Output:
	// of c1: 1 c1: email is not an address
	// of c1: 3 c1: resolver failed
	// merge: 2 c2: resolver failed
	// merge: 3 c1: resolver failed
}
