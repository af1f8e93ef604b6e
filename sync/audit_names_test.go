package sync_test

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
)

// auditScenario runs a scenario with edits of many fields, a group, a
// conflict held for a person, a gate's refusal and a delete, and returns
// the audit trail as JSON lines.
func auditScenario(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	sor := resolve.SystemOfRecord(map[string]concord.SystemID{"credit_limit": "erp"})
	r := newRig(t, []concord.SystemID{"crm", "erp", "web"}, withResolver(sor), withGroups(map[string][]string{"addr": {"street", "city"}}),
		func(c *recsync.Config) {
			c.Audit = audit.JSONLines(&buf)
			// The engine's clock stands still: how often it is read
			// is not what this compares.
			c.Now = func() time.Time { return time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC) }
		})
	fields := map[string]any{"street": "1 Main St", "city": "Leeds"}
	for i := range 24 {
		fields[fmt.Sprintf("f%02d", i)] = i
	}
	r.sys["crm"].Edit("k1", fields)
	r.sys["crm"].Edit("k2", map[string]any{"name": "Bo"})
	r.sys["erp"].Edit("k3", map[string]any{"credit_limit": 10})
	r.settle()
	// Concurrent edits of many fields in two systems, one of them in the
	// group; a non-owner's edit of an owned field.
	crm, web := map[string]any{"street": "2 High St"}, map[string]any{"city": "York"}
	for i := range 24 {
		crm[fmt.Sprintf("f%02d", i)] = i + 100
		web[fmt.Sprintf("f%02d", i)] = i + 200
	}
	crm["credit_limit"] = 5
	r.sys["crm"].Edit("k3", map[string]any{"credit_limit": 50}) // refused: the ERP owns it
	r.sys["crm"].Edit("k1", crm)
	r.sys["web"].Edit("k1", web)
	r.sys["web"].Delete("k2")
	r.sys["erp"].Edit("k2", map[string]any{"name": "Bob"})
	r.cycle()
	r.cycle()
	return buf.Bytes()
}

// epochs matches the engine's identity in a trail: a new store's epoch is
// random, so two runs differ there and only there.
var epochs = regexp.MustCompile(regexp.QuoteMeta(recsync.EngineActorName) + `[0-9a-f]+`)

// TestAuditIsDeterministic: the same scenario gives the same audit trail,
// byte for byte, edit.observed events included (they used to follow the
// order of a map).
func TestAuditIsDeterministic(t *testing.T) {
	first := epochs.ReplaceAll(auditScenario(t), []byte(recsync.EngineActorName+"E"))
	for run := range 3 {
		if again := epochs.ReplaceAll(auditScenario(t), []byte(recsync.EngineActorName+"E")); !bytes.Equal(first, again) {
			a, b := strings.Split(string(first), "\n"), strings.Split(string(again), "\n")
			for i := range min(len(a), len(b)) {
				if a[i] != b[i] {
					t.Fatalf("run %d: audit differs at line %d:\n%s\n%s", run+2, i+1, a[i], b[i])
				}
			}
			t.Fatalf("run %d: audit of %d lines, first run %d", run+2, len(b), len(a))
		}
	}
	events, err := audit.ReadJSONLines(bytes.NewReader(first))
	if err != nil {
		t.Fatal(err)
	}
	// Within a record and a cycle, edits are audited by system, then unit.
	type at struct {
		cycle uint64
		key   string
	}
	last := map[at]audit.Event{}
	held := 0
	for _, ev := range events {
		switch ev.Kind {
		case audit.EditObserved:
			k := at{ev.Cycle, ev.Key}
			// A coalesced edit (audit.Event.Units) takes its first unit's place.
			if p, ok := last[k]; ok && (p.System > ev.System || p.System == ev.System && p.UnitNames()[0] > ev.UnitNames()[0]) {
				t.Errorf("cycle %d %s: edit of %s/%v audited after %s/%v", ev.Cycle, ev.Key, ev.System, ev.UnitNames(), p.System, p.UnitNames())
			}
			last[k] = ev
		case audit.ConflictHeld:
			held++
			if ev.System == "" || len(ev.Candidates) == 0 {
				t.Errorf("conflict.held %s/%s names system %q with %d candidates; want the system whose change waits", ev.Key, ev.Unit, ev.System, len(ev.Candidates))
			}
			found := false
			for _, c := range ev.Candidates {
				found = found || (c.System == ev.System && !c.Canonical)
			}
			if !found {
				t.Errorf("conflict.held names %s, which is no competing candidate: %+v", ev.System, ev.Candidates)
			}
		}
	}
	if held == 0 {
		t.Error("the scenario held nothing: it does not test conflict.held")
	}
}

// TestAuditVersionsNameSystems: versions in the audit trail name the
// systems, not actor numbers, and read back to the same versions.
func TestAuditVersionsNameSystems(t *testing.T) {
	trail := auditScenario(t)
	for _, want := range []string{`"version":"{crm:`, `web:`, `"actors":{`, `"crm":`} {
		if !bytes.Contains(trail, []byte(want)) {
			t.Errorf("audit trail has no %s:\n%.2000s", want, trail)
		}
	}
	for line := range strings.Lines(string(trail)) {
		if i := strings.Index(line, `"version":"{`); i >= 0 && len(line) > i+12 && line[i+12] >= '0' && line[i+12] <= '9' {
			t.Errorf("a version written with actor numbers: %s", line)
		}
	}
	events, err := audit.ReadJSONLines(bytes.NewReader(trail))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := audit.JSONLines(&out).Emit(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), trail) {
		t.Error("the trail read back and written again differs")
	}
	// The engine's own identity is named too (a refusal is versioned by
	// the engine).
	if !bytes.Contains(trail, []byte(recsync.EngineActorName)) {
		t.Errorf("no version names the engine (%s...)", recsync.EngineActorName)
	}
}
