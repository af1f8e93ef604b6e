package reconcile

import (
	"context"
	"errors"
	"fmt"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/resolve"
)

// RecordField is the field name under which a [Difference], a repair or
// [KeyState.Behind] speaks of the record itself (its existence) rather
// than one field; [Config.Owners] uses it for the system of record of
// existence. It is resolve.RecordUnit.
const RecordField = resolve.RecordUnit

// Rules that a planned [Fix] names.
const (
	// RuleSystemOfRecord: the owner of the field (Config.Owners) wins.
	RuleSystemOfRecord = resolve.RuleSystemOfRecord
	// RuleCanonical: the engine's canonical value wins (nobody owns the
	// field, and the engine knows its value).
	RuleCanonical concord.Rule = "canonical"
)

// Knowledge is what the engine knows about records, which reconcile uses to
// class differences and plan repairs. The engine implements it; nil
// Knowledge means nothing is known (every difference is Missing or
// Conflicting, and only owned fields get a planned winner).
type Knowledge interface {
	// Known returns what the engine knows about each of keys (canonical
	// keys); keys the engine has never seen are simply absent from the
	// map. It is called after the scans, in batches of at most
	// Config.KnowledgeBatch keys, only for keys that differ. The returned
	// map and the maps in it are not modified by reconcile.
	Known(ctx context.Context, keys []string) (map[string]KeyState, error)
}

// KnowledgeFunc adapts a function to a [Knowledge].
type KnowledgeFunc func(ctx context.Context, keys []string) (map[string]KeyState, error)

// Known calls f.
func (f KnowledgeFunc) Known(ctx context.Context, keys []string) (map[string]KeyState, error) {
	return f(ctx, keys)
}

// KeyState is the engine's knowledge of one record.
type KeyState struct {
	// Canonical holds the engine's canonical values of the record's
	// fields, those it has; nil when the engine has no canonical record
	// (never seen, or deleted).
	Canonical map[string]concord.Value
	// Pending names the systems the engine is writing this record to now,
	// or will in this or the next cycle (a queued patch, a retry due):
	// a difference involving them is [InFlight].
	Pending map[concord.SystemID]bool
	// Behind names, per system, the fields the engine knows the system
	// lags canonical on (a write that failed, was dead-lettered or is
	// held for approval); [RecordField] means the record itself (a create
	// that failed). A difference on them is [Stale].
	Behind map[concord.SystemID][]string
}

// Repairer applies one repair. The engine implements it: it forgets what
// it believes system holds for key and writes system the canonical values
// (after taking the winning system's values, for owned fields), as an
// ordinary change that is audited with person and reason.
type Repairer interface {
	Repair(ctx context.Context, key string, system concord.SystemID, person, reason string) error
}

// RepairerFunc adapts a function to a [Repairer].
type RepairerFunc func(ctx context.Context, key string, system concord.SystemID, person, reason string) error

// Repair calls f.
func (f RepairerFunc) Repair(ctx context.Context, key string, system concord.SystemID, person, reason string) error {
	return f(ctx, key, system, person, reason)
}

// ApplyRepairs carries out plan through r: one Repair call per planned
// [Repair], in the plan's order (by key, then system), each with person
// and reason (the reason is suffixed with the repair's fields, rules and
// winners, so the audit trail says why each record was corrected). Items
// that need a person and in-flight differences are not touched.
//
// It goes on past a failed repair and returns how many succeeded and the
// failures joined (each a [*RepairError]; errors.Is(err, ErrRepair)
// holds). A panic in r is one such failure ([ErrPanic]). Cancelling ctx
// stops before the next repair and returns ctx.Err() joined with the
// failures so far. An empty person is refused: a repair must say who
// asked for it.
func ApplyRepairs(ctx context.Context, plan Plan, r Repairer, person, reason string) (int, error) {
	if r == nil {
		return 0, fmt.Errorf("%w: nil Repairer", ErrConfig)
	}
	if person == "" {
		return 0, fmt.Errorf("%w: a repair must name the person who asked for it", ErrConfig)
	}
	done := 0
	var errs []error
	for _, rep := range plan.Repairs {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		why := reason + " (reconcile: " + rep.describe() + ")"
		err := guard("Repairer.Repair", func() error { return r.Repair(ctx, rep.Key, rep.System, person, why) })
		if err != nil {
			errs = append(errs, &RepairError{Key: rep.Key, System: rep.System, Err: err})
			continue
		}
		done++
	}
	return done, errors.Join(errs...)
}
