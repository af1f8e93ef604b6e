//go:build cgo

package automerge_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	am "github.com/automerge/automerge-go"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store"
)

const (
	peerRecords = 1000 // records (automerge: documents) edited per round
	peerFields  = 20
)

func peerRecord(i int) map[string]concord.Value {
	f := make(map[string]concord.Value, peerFields)
	for j := range peerFields {
		f[fmt.Sprintf("field%02d", j)] = fmt.Sprintf("value %d of record %d", j, i)
	}
	return f
}

// edits gives, per case, the fields each system changes in a round: both
// systems change different fields (disjoint), or the same field to the
// same value (same).
func edits(c string, round int) (a, z map[string]concord.Value) {
	v := fmt.Sprintf("round %d", round)
	if c == "disjoint" {
		return map[string]concord.Value{"field02": v + " a"}, map[string]concord.Value{"field03": v + " z"}
	}
	return map[string]concord.Value{"field02": v}, map[string]concord.Value{"field02": v}
}

// BenchmarkPeer merges the edits of two systems to 1,000 20-field records.
// impl=concord is one engine cycle between two in-memory fakes with the
// memory store: it reads both systems' changes, merges per field, writes
// the missing edits to each side and commits the states (its echo cycle
// runs outside the timer). impl=automerge is one automerge document per
// record and per system: both documents merge each other (a.Merge(z),
// z.Merge(a)), in memory, with nothing read, written or saved. The edits
// themselves are made outside the timer in both. The engine's merge alone
// and its full round without I/O or store, on these same records and
// edits, are BenchmarkPeerMerge in package sync; internal/bench/ratios.sh
// sets them beside impl=automerge.
func BenchmarkPeer(b *testing.B) {
	ctx := context.Background()
	for _, c := range []string{"disjoint", "same"} {
		b.Run("case="+c+"/impl=concord", func(b *testing.B) {
			a, z := fake.New("a"), fake.New("z")
			e, err := recsync.New(recsync.Config{Store: store.NewMemory(), Resolver: resolve.LastWriterWins(),
				Logger: slog.New(slog.DiscardHandler), MaxBatches: 1000,
				Systems: []recsync.System{{ID: "a", Connector: a, BatchSize: 500}, {ID: "z", Connector: z, BatchSize: 500}}})
			if err != nil {
				b.Fatal(err)
			}
			for i := range peerRecords {
				a.Edit(fmt.Sprintf("k%04d", i), peerRecord(i))
			}
			for range 3 {
				if _, err := e.RunCycle(ctx); err != nil {
					b.Fatal(err)
				}
			}
			want := 0
			if c == "disjoint" {
				want = peerRecords
			}
			round := 0
			for b.Loop() {
				round++
				b.StopTimer()
				ea, ez := edits(c, round)
				for i := range peerRecords {
					a.Edit(fmt.Sprintf("k%04d", i), ea)
					z.Edit(fmt.Sprintf("k%04d", i), ez)
				}
				b.StartTimer()
				rep, err := e.RunCycle(ctx)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if ga, gz := rep.Systems["a"].Writes, rep.Systems["z"].Writes; ga != want || gz != want {
					b.Fatalf("cycle wrote %d to a and %d to z, want %d each", ga, gz, want)
				}
				if _, err := e.RunCycle(ctx); err != nil { // the echo
					b.Fatal(err)
				}
				ra, _ := a.Record("k0000")
				rz, _ := z.Record("k0000")
				if !concord.EqualValues(ra.Fields["field03"], rz.Fields["field03"]) || !concord.EqualValues(ra.Fields["field02"], rz.Fields["field02"]) {
					b.Fatalf("systems differ after the cycle: %v vs %v", ra.Fields, rz.Fields)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/peerRecords, "ns/record")
		})
		b.Run("case="+c+"/impl=automerge", func(b *testing.B) {
			docsA := make([]*am.Doc, peerRecords)
			docsZ := make([]*am.Doc, peerRecords)
			for i := range peerRecords {
				d := am.New()
				for k, v := range peerRecord(i) {
					if err := d.RootMap().Set(k, v); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := d.Commit("create"); err != nil {
					b.Fatal(err)
				}
				fork, err := d.Fork()
				if err != nil {
					b.Fatal(err)
				}
				docsA[i], docsZ[i] = d, fork
			}
			round := 0
			for b.Loop() {
				round++
				b.StopTimer()
				ea, ez := edits(c, round)
				for i := range peerRecords {
					set(b, docsA[i], ea)
					set(b, docsZ[i], ez)
				}
				b.StartTimer()
				for i := range peerRecords {
					if _, err := docsA[i].Merge(docsZ[i]); err != nil {
						b.Fatal(err)
					}
					if _, err := docsZ[i].Merge(docsA[i]); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				ha, hz := docsA[0].Heads(), docsZ[0].Heads()
				if len(ha) != len(hz) || ha[0] != hz[0] {
					b.Fatalf("documents differ after merging: heads %v vs %v", ha, hz)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/peerRecords, "ns/record")
		})
	}
}

func set(b *testing.B, d *am.Doc, fields map[string]concord.Value) {
	for k, v := range fields {
		if err := d.RootMap().Set(k, v); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := d.Commit("edit"); err != nil {
		b.Fatal(err)
	}
}
