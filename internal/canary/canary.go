// Package canary runs the engine with canary values in sensitive fields
// through every path that outputs or stores values (audit events and
// their sinks, logs, alerts, cycle errors, dictionary violations, failed
// writes, dead letters, holds, the store's bytes) and checks that no
// canary appears anywhere; then it rotates the key ring. The store tests
// of each backend run it with a dump of their bytes.
package canary

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/audit/alert"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/seal"
	"github.com/concordsync/concord/sync/store"
)

// The canaries: values of sensitive fields, each with a distinctive core
// that must appear nowhere either.
var canaries = []string{
	"078-05-1120",              // ssn of c1
	"GB82WEST12345698765432",   // iban of c1
	"hunter2-canary-pass",      // password of c1
	"666-00-BAD0",              // ssn the dictionary refuses (c2)
	"DE89370400440532013000",   // iban the ERP refuses (c3)
	"FR7630006000011234567890", // iban edited in both systems (c4)
	"NL91ABNA0417164300",       // the other edit of c4
}

// alerts collects alerts as text.
type alerts struct {
	mu  gosync.Mutex
	buf bytes.Buffer
}

func (a *alerts) Alert(_ context.Context, al alert.Alert) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	fmt.Fprintf(&a.buf, "%s\n%s\n%+v\n", al.Title(), al.Text(), al)
	return nil
}

// validator refuses an ssn starting with 666, quoting it as dictionaries
// do.
type validator struct{}

func (validator) Validate(rec concord.Record) error {
	if s, ok := rec.Fields["ssn"].(string); ok && strings.HasPrefix(s, "666") {
		return fmt.Errorf("record %s: field ssn: %q is not a valid social security number", rec.Key, s)
	}
	return nil
}

func ring(t testing.TB, current string, ids ...string) *seal.KeyRing {
	t.Helper()
	keys := map[seal.KeyID][]byte{}
	for _, id := range ids {
		keys[seal.KeyID(id)] = bytes.Repeat([]byte(id[:1]), 32)
	}
	hash := byte('h') // the pipeline's hash key; another for a stranger's ring
	if current[0] == 'x' {
		hash = 'z'
	}
	r, err := seal.NewKeyRing(seal.KeyID(current), keys, seal.WithHashKey(bytes.Repeat([]byte{hash}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Run syncs records with canaries in their sensitive fields through st
// and checks that no canary appears in any output nor in dump (the
// store's bytes, read after the engine's work).
func Run(t *testing.T, st store.Store, dump func(t *testing.T) []byte) {
	ctx := context.Background()
	var logs, auditText bytes.Buffer
	var mu gosync.Mutex
	logger := slog.New(slog.NewJSONHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	al := &alerts{}
	clock := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); clock = clock.Add(time.Second); return clock }
	crm := fake.New("crm", fake.WithClock(now))
	erp := fake.New("erp", fake.WithClock(now))
	cfg := recsync.Config{
		Systems:    []recsync.System{{ID: "crm", Connector: crm}, {ID: "erp", Connector: erp}},
		Store:      st,
		Audit:      audit.Multi(audit.JSONLines(lockedWriter{&mu, &auditText}), audit.Slog(logger)),
		Logger:     logger,
		Alerter:    al,
		Dictionary: validator{},
		Resolver:   resolve.Hold("two systems changed the account"),
		Now:        now,
		Pipeline:   "canary",
		Retry:      recsync.RetryPolicy{MaxAttempts: 1, MaxRecordAttempts: 2},
		Sensitive:  []string{"ssn", "iban", "password"},
		Keys:       ring(t, "k1", "k1"),
	}
	e, err := recsync.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var errs []string
	cycle := func() {
		t.Helper()
		rep, err := e.RunCycle(ctx)
		if err != nil {
			var ce *recsync.CycleError
			if !errors.As(err, &ce) {
				t.Fatalf("cycle: %v", err)
			}
			errs = append(errs, err.Error())
			for _, f := range ce.Failures {
				errs = append(errs, f.Error(), fmt.Sprintf("%v %+v", f, f))
			}
		}
		errs = append(errs, fmt.Sprintf("%+v", rep))
	}

	crm.Edit("c1", map[string]concord.Value{"name": "Ada", "ssn": canaries[0], "iban": canaries[1], "password": canaries[2]})
	crm.Edit("c2", map[string]concord.Value{"name": "Bob", "ssn": canaries[3]}) // refused by the dictionary
	crm.Edit("c4", map[string]concord.Value{"name": "Cy"})
	cycle()
	crm.Edit("c3", map[string]concord.Value{"name": "Di", "iban": canaries[4]})
	erp.FailKey("c3", connector.Permanent(fmt.Errorf("erp: iban %s rejected by the bank", canaries[4])))
	// A conflict on a sensitive field: held for a person.
	crm.Edit("c4", map[string]concord.Value{"iban": canaries[5]})
	erp.Edit("c4", map[string]concord.Value{"iban": canaries[6]})
	for range 4 {
		cycle()
	}
	if got, _ := erp.Record("c1"); got.Fields["ssn"] != canaries[0] {
		t.Fatalf("erp c1 = %v; the sensitive values must still sync", got.Fields)
	}
	dead, err := e.DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) < 2 {
		t.Fatalf("dead letters: %d; want the refused ssn and the refused write", len(dead))
	}
	holds, err := e.Holds(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(holds) != 1 {
		t.Fatalf("holds: %+v; want the iban conflict of c4", holds)
	}
	revealed, err := e.RevealHolds(ctx, ring(t, "k1", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(fmt.Sprintf("%v", revealed), canaries[5]) {
		t.Fatalf("RevealHolds with the keys: %+v; want the values", revealed)
	}
	if _, err := e.RevealHolds(ctx, ring(t, "x1", "x1")); !errors.Is(err, recsync.ErrWrongKeys) {
		t.Fatalf("RevealHolds with other keys: %v; want ErrWrongKeys", err)
	}
	if _, err := e.VerifyAudit(ctx); err != nil {
		t.Fatal(err)
	}

	outputs := map[string]string{
		"logs":         logs.String(),
		"audit text":   auditText.String(),
		"alerts":       al.buf.String(),
		"cycle errors": strings.Join(errs, "\n"),
		"dead letters": fmt.Sprintf("%+v", dead),
		"holds":        fmt.Sprintf("%+v", holds),
		"store bytes":  string(dump(t)),
	}
	if !strings.Contains(outputs["audit text"], recsync.Redacted) || !strings.Contains(outputs["dead letters"], recsync.Redacted) {
		t.Errorf("no %s in the audit text or the dead letters: the test did not reach the values", recsync.Redacted)
	}
	for what, text := range outputs {
		for _, c := range canaries {
			if i := strings.Index(text, c); i >= 0 {
				t.Errorf("canary %q found in the %s: ...%s...", c, what, text[max(0, i-120):min(len(text), i+len(c)+40)])
			}
		}
	}

	// Rotation: a ring with a new current key and the old one reads
	// everything; Reseal moves every sealed value to the new key; a ring
	// with the new key alone then reads everything.
	cfg.Keys = ring(t, "k2", "k1", "k2")
	if e, err = recsync.New(cfg); err != nil {
		t.Fatal(err)
	}
	cycle()
	states, letters, err := e.Reseal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if states == 0 || letters == 0 {
		t.Errorf("Reseal rewrote %d states and %d dead letters; want some of each", states, letters)
	}
	if s2, l2, err := e.Reseal(ctx); err != nil || s2+l2 != 0 {
		t.Errorf("a second Reseal rewrote %d states and %d dead letters (%v); want none", s2, l2, err)
	}
	cfg.Keys = ring(t, "k2", "k2")
	if e, err = recsync.New(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := e.RevealHolds(ctx, cfg.Keys); err != nil {
		t.Fatalf("after Reseal, the new key alone: %v", err)
	}
	if _, err := e.DeadLetters(ctx); err != nil {
		t.Fatalf("after Reseal, the new key alone: %v", err)
	}
	cycle()
}

type lockedWriter struct {
	mu *gosync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
