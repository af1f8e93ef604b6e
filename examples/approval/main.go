// Command approval is a runnable tour of the changes Concord holds for a
// person. An ERP, the system of record for suppliers' bank accounts and
// product prices, and a shop whose back office is also the CRM share
// suppliers and products. The engine holds every change of a bank account
// (iban) for a second person's approval, and a price change that is an
// outlier; account numbers are sealed at rest and redacted in its output.
//
//  1. Ana changes a supplier's IBAN and name in the shop: the name syncs,
//     the IBAN waits. Ana cannot approve her own change; Bob approves it and
//     the ERP gets it. Mallory changes it; Bob rejects that, and the shop is
//     set back.
//  2. After a history of ordinary price changes, a price cut from 100 to 1
//     and a 25% rise wait with their evidence while a 5% rise passes. The
//     cut is a sale: approved, it reaches the shop. The rise is a typo:
//     rejected, the ERP is set back.
//  3. The audit log is verified, and a signed checkpoint of it is checked
//     offline with nothing but the public key.
//
// Run it with "go run ./examples/approval". Its output is deterministic:
// the systems and the engine share a clock that stands still until the
// story moves it.
package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/seal"
	"github.com/concordsync/concord/sync/store"
)

func main() {
	if _, err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "approval:", err)
		os.Exit(1)
	}
}

const (
	erp  concord.SystemID = "erp"
	shop concord.SystemID = "shop"
	// The supplier's first account, and those Ana and Mallory type.
	ibanFirst, ibanAna, ibanMallory = "GB82WEST12345698765432", "DE89370400440532013000", "GB33BUKB20201555555555"
)

var systems = []concord.SystemID{erp, shop}

// newKeyRing makes a key ring for sensitive fields. A host loads its keys
// from a secret store, and keeps them for as long as it keeps its store.
func newKeyRing() (*seal.KeyRing, error) {
	key, hashKey := make([]byte, seal.KeySize), make([]byte, seal.MinHashKeySize)
	rand.Read(key) // crypto/rand.Read never fails (it crashes the program instead)
	rand.Read(hashKey)
	return seal.NewKeyRing("2026-03", map[seal.KeyID][]byte{"2026-03": key}, seal.WithHashKey(hashKey))
}

func newWorld(out io.Writer, st store.Store) (*world, error) {
	keys, err := newKeyRing()
	w := &world{out: out, clock: &storyClock{}, keys: keys, fakes: map[concord.SystemID]*fake.System{},
		result: outcome{states: map[string]map[concord.SystemID][]concord.Record{}}}
	w.clock.Set("09:00")
	cfg := recsync.Config{
		Resolver: resolve.LastWriterWins(),
		// A bank account change waits for a person's approval; so does
		// a price change that is an outlier (beyond ±50%, or far from
		// the recent changes: K 5, Window 64 and MinSamples 10 by default).
		Gates:     []resolve.Gate{resolve.RequireApproval("iban")},
		Anomalies: []resolve.AnomalyRule{{Field: "price", MaxChange: 0.5}},
		// Account numbers are sealed at rest under keys, and redacted in
		// everything the engine outputs.
		Sensitive: []string{"iban"},
		Keys:      keys,
		// A host would also keep the whole trail: audit.JSONLines.
		Audit: audit.SinkFunc(w.narrate),
		Store: st,
		Now:   w.clock.Now,
	}
	for _, id := range systems {
		w.fakes[id] = fake.New(string(id), fake.WithClock(w.clock.Now))
		cfg.Systems = append(cfg.Systems, recsync.System{ID: id, Connector: w.fakes[id]})
	}
	if err == nil {
		w.engine, err = recsync.New(cfg)
	}
	return w, err
}

// run tells the story to out and returns what its test checks.
func run(out io.Writer) (*outcome, error) {
	st, path, done, err := tempStore("approval")
	if err != nil {
		return nil, err
	}
	defer done()
	w, err := newWorld(out, st)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	w.bankAccount(ctx)
	w.prices(ctx)
	w.auditTrail(ctx)
	if w.err != nil {
		return &w.result, w.err
	}
	// Sealed at rest: the store's file holds the supplier's name as such,
	// but no account number.
	db, err := os.ReadFile(path)
	w.result.nameInStore = bytes.Contains(db, []byte("Acme Tools Ltd"))
	for _, iban := range []string{ibanFirst, ibanAna, ibanMallory} {
		w.result.plainInStore = w.result.plainInStore || bytes.Contains(db, []byte(iban))
	}
	fmt.Fprintf(w.out, "The store's file holds the supplier's name as such: %v; an account number: %v.\n",
		w.result.nameInStore, w.result.plainInStore)
	return &w.result, err
}

func (w *world) bankAccount(ctx context.Context) {
	w.heading("1. A supplier's bank account")
	w.edit("09:00", erp, "carol@example.com", "S-100", map[string]concord.Value{"name": "Acme Tools", "iban": ibanFirst})
	w.cycle(ctx)
	fmt.Fprintln(w.out, "The name reached the shop; the account waits for a person, even a supplier's first.")
	w.check(w.decide(ctx, "09:10", "S-100", "bob@example.com", false, "checked against the supplier's letter"))
	w.cycle(ctx)

	w.edit("10:00", shop, "ana@example.com", "S-100", map[string]concord.Value{"name": "Acme Tools Ltd", "iban": ibanAna})
	w.cycle(ctx)
	w.snap("ana's change held")
	fmt.Fprintln(w.out, "The name reached the ERP; the account waits. Engine.Holds lists it redacted:")
	w.printHolds(ctx, nil)
	fmt.Fprintln(w.out, "Engine.RevealHolds, for a caller with the pipeline's key ring, shows the values:")
	w.printHolds(ctx, w.keys)
	stranger, err := newKeyRing()
	w.check(err)
	_, w.result.wrongKeys = w.engine.RevealHolds(ctx, stranger)
	fmt.Fprintf(w.out, "With another key ring: %v.\n", w.result.wrongKeys)

	w.result.fourEyes = w.decide(ctx, "10:05", "S-100", "ana@example.com", false, "urgent, the supplier asked")
	if !errors.Is(w.result.fourEyes, recsync.ErrFourEyes) {
		w.check(fmt.Errorf("ana approving her own change: %v; want ErrFourEyes", w.result.fourEyes))
	}
	fmt.Fprintf(w.out, "       refused: %v\n", w.result.fourEyes)
	w.check(w.decide(ctx, "10:30", "S-100", "bob@example.com", false, "called the supplier on the number on file"))
	w.cycle(ctx)
	w.snap("ana's change approved")

	w.edit("11:00", shop, "mallory@example.com", "S-100", map[string]concord.Value{"iban": ibanMallory})
	w.cycle(ctx)
	w.snap("mallory's change held")
	w.check(w.decide(ctx, "11:20", "S-100", "bob@example.com", true, "not requested by the supplier"))
	w.cycle(ctx)
	w.snap("mallory's change rejected")
	w.show("S-100", "iban")
}

func (w *world) prices(ctx context.Context) {
	w.heading("2. Prices")
	fmt.Fprintln(w.out, "12:00  erp  erik@example.com creates 30 products, P-01 to P-30, at 20.00 to 165.00;\n"+
		"12:30  erp  erik@example.com changes 27 of them by -3% to +3%.")
	w.quiet = true
	product, price := func(i int) string { return fmt.Sprintf("P-%02d", i+1) }, func(i int) float64 { return float64(20 + 5*i) }
	w.clock.Set("12:00")
	for i := range 30 {
		w.fakes[erp].EditBy("erik@example.com", product(i), map[string]concord.Value{"price": price(i)})
	}
	w.cycle(ctx)
	w.clock.Set("12:30")
	for i := range 30 {
		if p := product(i); p != "P-05" && p != "P-17" && p != "P-20" {
			pct := []float64{-3, -2, -1, 1, 2, 3}[i%6]
			w.fakes[erp].EditBy("erik@example.com", p, map[string]concord.Value{"price": math.Round(price(i)*(100+pct)) / 100})
		}
	}
	w.cycle(ctx)
	w.quiet = false
	fmt.Fprintf(w.out, "       %d audit events, not shown. The anomaly rule learned how much a price usually changes.\n", w.result.quietEvents)

	w.edit("14:00", erp, "erik@example.com", "P-17", map[string]concord.Value{"price": 1.0})    // 100 → 1: −99%
	w.edit("14:00", erp, "erik@example.com", "P-05", map[string]concord.Value{"price": 42.0})   // 40 → 42: +5%
	w.edit("14:00", erp, "erik@example.com", "P-20", map[string]concord.Value{"price": 143.75}) // 115 → 143.75: +25%
	w.cycle(ctx)
	w.snap("prices held")
	fmt.Fprintln(w.out, "The +5% change reached the shop at once; two wait:")
	w.printHolds(ctx, nil)
	w.check(w.decide(ctx, "14:30", "P-17", "pia@example.com", false, "clearance sale, confirmed"))
	w.check(w.decide(ctx, "14:31", "P-20", "pia@example.com", true, "a typo: the new price is 117.30"))
	w.cycle(ctx)
	w.snap("prices decided")
	for _, p := range []string{"P-05", "P-17", "P-20"} {
		w.show(p, "price")
	}
}

func (w *world) auditTrail(ctx context.Context) {
	w.heading("3. The audit trail")
	res, err := w.engine.VerifyAudit(ctx)
	w.result.verify = err
	fmt.Fprintf(w.out, "Engine.VerifyAudit: %d entries, each chained to the one before: %v.\n", res.Entries, errOr(err, "ok"))
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	w.check(err)
	signed, err := w.engine.AuditCheckpoint(ctx, priv)
	w.check(err)
	text, err := signed.MarshalText()
	w.check(err)
	// Its signature differs with every key: only the signed lines show.
	head, _, _ := bytes.Cut(text, []byte("\n\n"))
	fmt.Fprintf(w.out, "Engine.AuditCheckpoint, signed with the host's ed25519 key, to keep apart from the store:\n"+
		"  %s\n  sig ...\n", bytes.ReplaceAll(head, []byte("\n"), []byte("\n  ")))

	// Offline: nothing but the checkpoint's text and the public key.
	cp, err := audit.ParseCheckpoint(text)
	w.check(err)
	w.result.checkpoint = cp.Verify(pub)
	fmt.Fprintf(w.out, "Offline, audit.ParseCheckpoint and Verify(public key): %v.\n", errOr(w.result.checkpoint, "verified"))
	other, _, err := ed25519.GenerateKey(rand.Reader)
	w.check(err)
	w.result.otherKey = cp.Verify(other)
	fmt.Fprintf(w.out, "With another public key: refused with audit.ErrBadSignature: %v.\n", errors.Is(w.result.otherKey, audit.ErrBadSignature))
	res, err = w.engine.VerifyAudit(ctx, audit.WithCheckpoint(cp.Checkpoint))
	w.check(err)
	w.result.checkpointsMatched = res.Checkpoints
	fmt.Fprintf(w.out, "Engine.VerifyAudit with the checkpoint: %d entries, %d checkpoint matched: %v.\n\n",
		res.Entries, res.Checkpoints, errOr(err, "verified"))
}
