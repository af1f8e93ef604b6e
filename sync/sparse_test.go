package sync_test

import (
	"context"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/fake"
)

// sparse is a system that stores a null as no field at all, as a document
// store does, or a JSON API whose records leave nulls out: its change feed
// never reports a null.
type sparse struct{ *fake.System }

func (s sparse) Changes(ctx context.Context, c connector.Cursor, limit int) (connector.Batch, error) {
	b, err := s.System.Changes(ctx, c, limit)
	for i, r := range b.Records {
		f := make(map[string]concord.Value, len(r.Fields))
		for k, v := range r.Fields {
			if v != nil {
				f[k] = v
			}
		}
		b.Records[i].Fields = f
	}
	return b, err
}

// A system that stores a null as no field holds the null the engine wrote:
// its records without the field are in sync, and nothing is written to it
// again. Before, the engine took the field for gone from the system (as
// after a column dropped) and wrote the null again in every cycle, for
// ever: a single field emptied, a group with a null member, a record
// created there with a null.
func TestASystemThatLeavesNullsOutIsWrittenANullOnce(t *testing.T) {
	for _, tc := range []struct {
		name        string
		first, edit map[string]any
		want        map[string]any
	}{
		{"emptied", map[string]any{"name": "A", "nick": "N"}, map[string]any{"nick": nil},
			map[string]any{"name": "A", "nick": nil}},
		{"group-member", map[string]any{"name": "A", "street": "S", "zip": "Z"}, map[string]any{"zip": nil},
			map[string]any{"name": "A", "street": "S", "zip": nil}},
		{"group-emptied", map[string]any{"name": "A", "street": "S", "zip": "Z"}, map[string]any{"street": nil, "zip": nil},
			map[string]any{"name": "A", "street": nil, "zip": nil}},
		{"created-with-a-null", map[string]any{"name": "A", "nick": nil}, nil,
			map[string]any{"name": "A", "nick": nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, []concord.SystemID{"portal", "docs"}, withGroups(map[string][]string{"addr": {"street", "zip"}}))
			r.cfg.Systems[1].Connector = sparse{r.sys["docs"]}
			r.engine = r.newEngine()
			r.sys["portal"].Edit("c1", tc.first)
			r.settle()
			if tc.edit != nil {
				r.sys["portal"].Edit("c1", tc.edit)
				r.settle() // fails if a cycle still writes after 5
			}
			r.requireAll("c1", tc.want)
			for range 3 {
				if rep := r.cycle(); rep.Systems["docs"].Writes != 0 {
					t.Fatalf("a cycle wrote to docs again: %+v", rep.Systems["docs"])
				}
			}
		})
	}
}

// The same for a system without version tags, whose writes name no state:
// with a rule that held a null only in the state a write's reply named,
// the null was written to it in every cycle, for ever (found by the
// simulation once write replies came without tags, feature barereplies).
func TestATaglessSystemThatLeavesNullsOutIsWrittenANullOnce(t *testing.T) {
	r := newRig(t, []concord.SystemID{"portal", "docs"})
	d := fake.New("docs", fake.WithClock(r.clock.now), fake.WithoutTags())
	r.sys["docs"], r.cfg.Systems[1].Connector = d, sparse{d}
	r.engine = r.newEngine()
	r.sys["portal"].Edit("c1", map[string]any{"name": "A", "nick": "N"})
	r.settle()
	r.sys["portal"].Edit("c1", map[string]any{"nick": nil})
	r.settle() // fails if a cycle still writes after 5
	r.requireAll("c1", map[string]any{"name": "A", "nick": nil})
}
