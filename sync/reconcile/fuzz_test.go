package reconcile

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/concordsync/concord"
)

// decodeSides turns fuzz bytes into two or three sides of small records:
// each record is (side, key, field, value) from four bytes, so keys,
// fields and values collide often. Later bytes for the same key and
// field overwrite earlier ones; value 255 deletes the field, 254 sets nil.
func decodeSides(data []byte) [][]concord.Record {
	nSides := 2
	if len(data) > 0 && data[0]%4 == 3 {
		nSides = 3
	}
	recs := make([]map[string]map[string]concord.Value, nSides)
	var order [][]string
	for i := range recs {
		recs[i] = map[string]map[string]concord.Value{}
		order = append(order, nil)
	}
	for i := 1; i+3 < len(data); i += 4 {
		s := int(data[i]) % nSides
		key := fmt.Sprintf("k%d", data[i+1]%16)
		if data[i+1] >= 250 {
			key = "\x00<b>|" // hostile
		}
		field := fmt.Sprintf("f%d", data[i+2]%4)
		r := recs[s][key]
		if r == nil {
			r = map[string]concord.Value{}
			recs[s][key] = r
			order[s] = append(order[s], key)
		}
		switch v := data[i+3]; {
		case v == 255:
			delete(r, field)
		case v == 254:
			r[field] = nil
		case v%2 == 0:
			r[field] = int64(v % 8)
		default:
			r[field] = float64(v%8) - 1 // collides with the ints on purpose
		}
	}
	out := make([][]concord.Record, nSides)
	for s := range recs {
		for _, k := range order[s] { // first-seen order: no side sorted
			out[s] = append(out[s], concord.Record{Key: k, Fields: recs[s][k]})
		}
	}
	return out
}

// oracle compares sides the obvious way, holding everything.
func oracle(sides [][]concord.Record) []string {
	var out []string
	byKey := map[string][]map[string]concord.Value{}
	for s, recs := range sides {
		for _, r := range recs {
			if byKey[r.Key] == nil {
				byKey[r.Key] = make([]map[string]concord.Value, len(sides))
			}
			byKey[r.Key][s] = r.Fields
		}
	}
	for _, k := range slices.Sorted(maps.Keys(byKey)) {
		recs := byKey[k]
		var present []map[string]concord.Value
		for _, f := range recs {
			if f != nil {
				present = append(present, f)
			}
		}
		if len(present) < len(sides) {
			out = append(out, k+"/"+RecordField)
		}
		names := map[string]bool{}
		for _, f := range present {
			for n := range f {
				names[n] = true
			}
		}
		for _, n := range slices.Sorted(maps.Keys(names)) {
			differ := false
			for _, f := range present[1:] {
				v0, ok0 := present[0][n]
				v, ok := f[n]
				if ok0 != ok || (ok && !concord.EqualValues(v0, v)) {
					differ = true
				}
			}
			if differ && len(present) > 1 {
				out = append(out, k+"/"+n)
			}
		}
	}
	return out
}

// FuzzRun: for any records on two or three sides, in any order, Run finds
// exactly what the obvious comparison finds, and its reports render.
func FuzzRun(f *testing.F) {
	f.Add([]byte{0, 0, 1, 1, 2, 1, 1, 1, 2})
	f.Add([]byte{3, 0, 1, 1, 2, 1, 1, 1, 3, 2, 1, 1, 2})
	f.Add([]byte{1, 0, 250, 0, 254, 1, 251, 0, 255, 0, 3, 3, 3, 1, 3, 3, 4})
	f.Add(bytes.Repeat([]byte{7, 1, 5, 2}, 40))
	f.Fuzz(func(t *testing.T, data []byte) {
		sides := decodeSides(data)
		cfg := Config{PageSize: 1 + len(data)%5}
		for i, recs := range sides {
			cfg.Sides = append(cfg.Sides, Side{System: concord.SystemID(fmt.Sprintf("s%d", i)), Scanner: scanner(recs...)})
		}
		rep, err := Run(context.Background(), cfg)
		empty := slices.ContainsFunc(sides, func(r []concord.Record) bool { return len(r) == 0 })
		if empty {
			if err == nil {
				t.Fatal("a side without records passed")
			}
			if rep == nil {
				t.Fatal("no report for an empty side")
			}
		} else if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, d := range rep.Differences {
			got = append(got, d.Key+"/"+d.Field)
		}
		if diff := cmp.Diff(oracle(sides), got); diff != "" {
			t.Fatalf("differences (-oracle +Run):\n%s", diff)
		}
		var buf bytes.Buffer
		if err := rep.WriteHTML(&buf); err != nil {
			t.Fatal(err)
		}
		checkHTML(t, buf.String())
		buf.Reset()
		if err := rep.WriteMarkdown(&buf); err != nil {
			t.Fatal(err)
		}
		checkMarkdownTables(t, buf.String())
	})
}
