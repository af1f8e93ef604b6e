package sync_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/concordsync/concord"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/transform"
	"github.com/concordsync/concord/transform/dict"
)

// errBadState is a custom validator's own rule.
var errBadState = errors.New("not a state code")

// customValidator requires "name" and checks "state" without package dict,
// returning its violations in the form the form selects.
type customValidator struct{ form string }

func (c customValidator) Validate(rec concord.Record) error {
	var list []transform.Violation
	if v, ok := rec.Fields["name"]; !ok || v == nil {
		list = append(list, transform.Violation{Key: rec.Key, Field: "name", Rule: transform.ErrRequired})
	}
	if s, ok := rec.Fields["state"].(string); ok && len(s) != 5 {
		list = append(list, transform.Violation{Key: rec.Key, Field: "state", Value: s, Rule: errBadState, Reason: "want XX-YY"})
	}
	switch {
	case len(list) == 0:
		return nil
	case c.form == "violations":
		return fmt.Errorf("custom: %w", &transform.Violations{Key: rec.Key, List: list}) // wrapped: errors.As must find it
	case c.form == "violation" && len(list) == 1:
		return list[0]
	}
	return fmt.Errorf("record %q: %d problems", rec.Key, len(list)) // an undocumented error type
}

// TestCustomValidatorBehavesAsDict: the engine reads a custom Validator's
// transform.Violations exactly as it reads dict's: a required field that the
// target system does not carry at all does not refuse the write there; any
// other violation does. An error of another type refuses every write it is
// returned for.
func TestCustomValidatorBehavesAsDict(t *testing.T) {
	d, err := dict.New(dict.Field{Name: "name", Type: dict.String, Required: true},
		dict.Field{Name: "state", Type: dict.String, Pattern: `[A-Z]{2}-[A-Z]{2}`})
	if err != nil {
		t.Fatal(err)
	}
	// The ERP does not carry names: its outbound transform drops them.
	noName := transform.Func(func(_ context.Context, rec concord.Record) (concord.Record, error) {
		out := rec.Clone()
		delete(out.Fields, "name")
		return out, nil
	})
	for _, tc := range []struct {
		name      string
		v         recsync.Validator
		wantWrite bool // the valid record reaches the ERP without its name
	}{
		{"dict", d, true},
		{"custom violations", customValidator{"violations"}, true},
		{"custom single violation", customValidator{"violation"}, true},
		{"custom plain error", customValidator{"plain"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, []concord.SystemID{"crm", "erp"}, func(c *recsync.Config) {
				c.Dictionary = tc.v
				c.Systems[1].Outbound = noName
			})
			r.sys["crm"].Edit("ok", map[string]any{"name": "Ada", "state": "US-CA"})
			r.cycle()
			got := r.fields("erp", "ok")
			if written := got != nil; written != tc.wantWrite {
				t.Fatalf("erp holds %v; want written = %v", got, tc.wantWrite)
			}
			if tc.wantWrite && (got["state"] != "US-CA" || got["name"] != nil) {
				t.Errorf("erp holds %v; want the state and no name", got)
			}
			// A violation the ERP is at fault for refuses the write,
			// whichever validator reports it: the canonical record is
			// valid, what the ERP would hold is not.
			r.sys["crm"].Edit("bad", map[string]any{"name": "Bo", "state": "US-NY"})
			r.engine = mustEngineWith(t, r, tc.v, transform.Func(func(_ context.Context, rec concord.Record) (concord.Record, error) {
				out := rec.Clone()
				delete(out.Fields, "name")
				if s, ok := out.Fields["state"].(string); ok {
					out.Fields["state"] = s + "!"
				}
				return out, nil
			}))
			r.cycle()
			if got := r.fields("erp", "bad"); got != nil {
				t.Errorf("erp holds %v: a write the validator refuses was sent", got)
			}
			// On the way in, a missing required field quarantines the
			// record with the violation as the reason.
			r.sys["crm"].Edit("anon", map[string]any{"state": "US-TX"})
			r.cycle()
			if !errors.Is(r.lastErr, transform.ErrRequired) && tc.name != "custom plain error" {
				t.Errorf("cycle error %v does not match transform.ErrRequired", r.lastErr)
			}
			if got := r.fields("erp", "anon"); got != nil {
				t.Errorf("erp holds %v: a record without its required name went through", got)
			}
		})
	}
}

// mustEngineWith replaces r's engine by one on the same store and systems
// with validator v and the ERP's outbound transform out.
func mustEngineWith(t *testing.T, r *rig, v recsync.Validator, out transform.Transformer) *recsync.Engine {
	t.Helper()
	e, err := recsync.New(recsync.Config{Store: r.store, Audit: r.audit, Now: r.clock.now, Dictionary: v,
		Retry: recsync.RetryPolicy{MaxAttempts: 1}, Systems: []recsync.System{
			{ID: "crm", Connector: r.sys["crm"]},
			{ID: "erp", Connector: r.sys["erp"], Outbound: out},
		}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}
