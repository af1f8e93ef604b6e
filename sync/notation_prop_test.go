package sync_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/fake"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/transform"
)

// notating is a system that packs canonical fields into fields of its own
// (packs[i] into "n<i>", the parts joined by "|") and stores the parts of
// the fields in shout in its own notation: upper case.
type notating struct {
	*fake.System
	packs [][]string
	shout map[string]bool
}

func (s notating) Apply(ctx context.Context, ps []connector.Patch) ([]connector.Result, error) {
	for i, p := range ps {
		set := maps2(p.Set)
		for j, pack := range s.packs {
			v, ok := set[packName(j)].(string)
			if !ok {
				continue
			}
			parts := strings.Split(v, "|")
			for k, f := range pack {
				if k < len(parts) && s.shout[f] {
					parts[k] = strings.ToUpper(parts[k])
				}
			}
			set[packName(j)] = strings.Join(parts, "|")
		}
		p.Set = set
		ps[i] = p
	}
	return s.System.Apply(ctx, ps)
}

func packName(i int) string { return fmt.Sprintf("n%d", i) }

// A system's own notation of the values it holds never becomes an edit,
// however its fields pack the canonical ones, with or without the
// transforms' lineage, whichever fields are sensitive (keyed hashes),
// whether the reply to a write is lost, and whether its person changes a
// field of its own after the engine has read its last write back or
// before. When the warehouse changes before that read, or the reply is
// lost, the portal's person edits only fields the warehouse keeps in the
// canonical notation: the notation of a unit being written is learnt only
// from the write read back as its echo (README, "Notation and time"), so a
// change the warehouse makes before that read, or a read without the tag
// the lost reply would have given, turns it into an edit, a known limit
// this test leaves out. What it checks then is every unit written again
// beside them, packed in the same field, and every unit held.
func TestNotationNeverBecomesAnEdit(t *testing.T) {
	fields := []string{"f0", "f1", "f2", "f3", "f4", "f5"}
	keys := keyRing(t, "a1", "a1")
	rapid.Check(t, func(rt *rapid.T) {
		order := rapid.Permutation(fields).Draw(rt, "order")
		var packs [][]string
		for i := 0; i < len(order); {
			n := min(rapid.IntRange(1, 3).Draw(rt, "pack size"), len(order)-i)
			packs = append(packs, order[i:i+n])
			i += n
		}
		shout := map[string]bool{}
		var plain []string
		for _, f := range fields {
			if shout[f] = rapid.Bool().Draw(rt, "shout "+f); !shout[f] {
				plain = append(plain, f)
			}
		}
		if len(plain) == 0 {
			shout[fields[0]], plain = false, fields[:1]
		}
		var rules []transform.Rule
		for i, pack := range packs {
			n := len(pack)
			rules = append(rules, transform.Computed([]string{packName(i)}, pack,
				func(v []concord.Value) ([]concord.Value, error) {
					s, _ := v[0].(string)
					parts := strings.SplitN(s, "|", n)
					out := make([]concord.Value, n)
					for k := range out {
						if k < len(parts) {
							out[k] = parts[k]
						}
					}
					return out, nil
				},
				func(v []concord.Value) ([]concord.Value, error) {
					parts := make([]string, len(v))
					for k, x := range v {
						parts[k] = fmt.Sprint(x)
					}
					return []concord.Value{strings.Join(parts, "|")}, nil
				}))
		}
		m := transform.MustMapping(rules...)
		in, out := m.Inbound(), m.Outbound()
		if rapid.Bool().Draw(rt, "funcs") { // no lineage
			in, out = transform.Func(in.Transform), transform.Func(out.Transform)
		}
		var sensitive []string // sealed at rest, hashed with a key
		for _, f := range fields {
			if rapid.Bool().Draw(rt, "sensitive "+f) {
				sensitive = append(sensitive, f)
			}
		}
		r := newRig(rt, []concord.SystemID{"portal", "warehouse"})
		r.rebuild(r.store, []recsync.System{{ID: "portal", Connector: r.sys["portal"]},
			{ID: "warehouse", Connector: notating{r.sys["warehouse"], packs, shout}, Inbound: in, Outbound: out}},
			withConfig(func(c *recsync.Config) {
				if len(sensitive) > 0 {
					c.Sensitive, c.Keys = sensitive, keys
				}
			}))

		want := map[string]any{}
		for _, f := range fields {
			want[f] = "v0" + f
		}
		check := func(when string) {
			p := r.fields("portal", "c1")
			for _, f := range fields {
				if p[f] != want[f] {
					rt.Fatalf("%s: portal %s = %v, want %v (portal %v)", when, f, p[f], want[f], p)
				}
			}
			w := r.fields("warehouse", "c1")
			for i, pack := range packs {
				parts := make([]string, len(pack))
				for k, f := range pack {
					parts[k] = want[f].(string)
					if shout[f] {
						parts[k] = strings.ToUpper(parts[k])
					}
				}
				if got, exp := w[packName(i)], strings.Join(parts, "|"); got != exp {
					rt.Fatalf("%s: warehouse %s = %v, want %v", when, packName(i), got, exp)
				}
			}
			for _, ev := range r.audit.Events() {
				if ev.Kind != audit.EditObserved || ev.System != "warehouse" {
					continue
				}
				for _, f := range fields {
					if ev.Covers(f) {
						rt.Fatalf("%s: the warehouse's notation became an edit of %s: %+v", when, f, ev)
					}
				}
			}
		}
		r.sys["portal"].Edit("c1", want)
		r.settle()
		check("created")
		for step := range rapid.IntRange(1, 6).Draw(rt, "steps") {
			before := rapid.Bool().Draw(rt, "warehouse changes a field of its own before the read")
			lost := rapid.Bool().Draw(rt, "the write's reply lost")
			editable := fields // the write read back first, as its echo: its notation is learnt
			if before || lost {
				// Read back after another change, or without the
				// tag the reply would have given: nothing tells the
				// written unit's notation from a person's edit.
				editable = plain
			}
			edit := map[string]any{}
			for _, f := range editable {
				if rapid.Bool().Draw(rt, "edit "+f) {
					edit[f] = fmt.Sprintf("v%d%s", step+1, f)
					want[f] = edit[f]
				}
			}
			if len(edit) > 0 {
				r.sys["portal"].Edit("c1", edit)
			}
			if lost {
				r.sys["warehouse"].LoseRepliesNext(1) // applied, its outcome unknown
			}
			r.cycle()                             // writes the edit to the warehouse
			r.sys["warehouse"].LoseRepliesNext(0) // a cycle that wrote nothing leaves no loss armed for later
			if before {
				r.sys["warehouse"].Edit("c1", map[string]any{"note": fmt.Sprint(step)})
			}
			r.settle()
			if rapid.Bool().Draw(rt, "warehouse changes a field of its own after the read") {
				r.sys["warehouse"].Edit("c1", map[string]any{"note": fmt.Sprintf("after %d", step)})
				r.settle()
			}
			check(fmt.Sprintf("step %d", step+1))
		}
	})
}
