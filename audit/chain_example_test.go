package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/concordsync/concord/audit"
)

func ExampleChainedJSONLines() {
	var file bytes.Buffer // an *os.File in a real host
	sink := audit.ChainedJSONLines(&file, audit.Head{})
	at := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	_ = sink.Emit(context.Background(), []audit.Event{
		{Time: at, Kind: audit.EditObserved, System: "portal", Key: "cust-42"},
		{Time: at, Kind: audit.WriteSucceeded, System: "crm", Key: "cust-42"},
		{Time: at, Kind: audit.WriteSucceeded, System: "erp", Key: "cust-42"},
	})
	fmt.Print(strings.SplitAfter(file.String(), "\n")[0])

	res, err := audit.VerifyJSONLines(bytes.NewReader(file.Bytes()))
	fmt.Println(res.Entries, "entries, head", res.Head.Seq, err)

	// Someone edits the second line.
	edited := strings.Replace(file.String(), `"system":"crm"`, `"system":"CRM"`, 1)
	_, err = audit.VerifyJSONLines(strings.NewReader(edited))
	fmt.Println(err)
	// Output:
	// {"seq":1,"prev":"0000000000000000000000000000000000000000000000000000000000000000","hash":"6cfd391259d8e7b7097f966b795854861e075cce49107be5ec148774dac9c8f3","event":{"time":"2025-03-14T09:00:00Z","kind":"edit.observed","system":"portal","key":"cust-42","version":"{}"}}
	// 3 entries, head 3 <nil>
	// audit: entry 2 (line 2): modified: hash mismatch: the entry's bytes changed
}

func ExampleSignCheckpoint() {
	// The host's key; in production from concord-audit keygen, kept
	// secret. The public key goes to whoever audits.
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	pub := priv.Public().(ed25519.PublicKey)

	var file bytes.Buffer
	sink := audit.ChainedJSONLines(&file, audit.Head{})
	for i := range 5 {
		_ = sink.Emit(context.Background(), []audit.Event{{Kind: audit.WriteSucceeded, Key: fmt.Sprint("cust-", i)}})
	}
	head := sink.Head()
	scp, err := audit.SignCheckpoint(priv, audit.Checkpoint{Log: "crm-erp", Seq: head.Seq, Hash: head.Hash,
		Time: time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)})
	if err != nil {
		fmt.Println(err)
		return
	}
	text, _ := scp.MarshalText() // stored apart from the log
	fmt.Print(string(text))

	// Later, offline, with the text, the log and the public key only.
	cp, err := audit.ParseCheckpoint(text)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("signature:", cp.Verify(pub))
	_, err = audit.VerifyJSONLines(bytes.NewReader(file.Bytes()), audit.WithCheckpoint(cp.Checkpoint))
	fmt.Println("log:", err)

	// The last two lines cut off.
	lines := strings.SplitAfter(file.String(), "\n")
	_, err = audit.VerifyJSONLines(strings.NewReader(strings.Join(lines[:3], "")), audit.WithCheckpoint(cp.Checkpoint))
	fmt.Println("log:", err)
	// Output:
	// concord-audit-checkpoint v1
	// log crm-erp
	// seq 5
	// hash 8701304c93ef751a3dfb50719a45df857066dfba36aa51a1b3aa9b7fb5d3eb2e
	// time 2025-03-14T09:00:00Z
	//
	// sig fe812c12f3ab4ce6 C79+UZv68dqLkLAZCrsD4Mv//6xW6rulltkBz3oHrkzfI+zRdXe2OHzQf0JmuWS8UyRxgEEx/xnVY2YuClF/DQ==
	// signature: <nil>
	// log: <nil>
	// log: audit: entry 4 (line 4): truncated: the log ends after entry 3 (line 3); checkpoint "crm-erp" is at entry 5
}

func ExampleChain() {
	// The engine builds entries when it commits, stores their encoded
	// form and delivers them later.
	chain := audit.NewChain(audit.Head{})
	entries, err := chain.Append(
		audit.Event{Kind: audit.MergeDecided, Key: "cust-42", Rule: "fast-forward"},
		audit.Event{Kind: audit.WriteSucceeded, System: "crm", Key: "cust-42"},
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	var stored [][]byte
	for _, e := range entries {
		b, _ := audit.EncodeEntry(e)
		stored = append(stored, b)
	}

	// Verifying what the store holds.
	var fromStore iter.Seq2[audit.Entry, error] = func(yield func(audit.Entry, error) bool) {
		for _, b := range stored {
			if !yield(audit.DecodeEntry(b)) {
				return
			}
		}
	}
	res, err := audit.VerifyEntries(fromStore)
	fmt.Println(res.Entries, res.Head.Seq, err)
	e, _ := audit.DecodeEntry(stored[1])
	fmt.Println(e.Seq, e.Event.Seq, e.Event.Kind, e.Event.System)
	// Output:
	// 2 2 <nil>
	// 2 2 write.succeeded crm
}

// A host that stores what it appends (as the engine's audit outbox does)
// takes each entry's stored form from AppendEncoded, with no second pass
// over the bytes.
func ExampleChain_AppendEncoded() {
	c := audit.NewChain(audit.Head{})
	at := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	entries, stored, err := c.AppendEncoded(
		audit.Event{Time: at, Kind: audit.WriteSucceeded, System: "crm", Key: "cust-42", Reason: `"<ok>"`},
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s\n", entries[0].EventJSON)
	fmt.Printf("%.60s...\n", stored[0])
	again, _ := audit.EncodeEntry(entries[0])
	fmt.Println(bytes.Equal(again, stored[0]), c.Head().Seq)
	// Output:
	// {"time":"2025-03-14T09:00:00Z","kind":"write.succeeded","system":"crm","key":"cust-42","version":"{}","reason":"\"<ok>\""}
	// {"seq":1,"prev":"0000000000000000000000000000000000000000000...
	// true 1
}
