package sync_test

// The benchmark suite of issue 13: every Concord figure beside its floor in
// the same run, named so that benchstat can group them by /impl:
//
//	go test ./sync -run '^$' -bench 'Suite' -benchmem -count 6 | benchstat -col /impl -
//
// internal/bench/ratios.sh runs them all and prints the ratios. Nothing
// here runs without -bench: the setup lives inside the benchmarks.

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strings"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store"
	"github.com/concordsync/concord/sync/store/boltstore"
	"github.com/concordsync/concord/transform"
)

const (
	suiteFields = 20
	suiteBatch  = 500
)

// suiteRecord is record i of a data set: 20 fields of mixed kinds.
func suiteRecord(i int) map[string]concord.Value {
	f := make(map[string]concord.Value, suiteFields)
	for j := range suiteFields {
		name := fmt.Sprintf("field%02d", j)
		switch j % 4 {
		case 0:
			f[name] = int64(i*suiteFields + j)
		case 1:
			f[name] = j%8 == 1
		default:
			f[name] = fmt.Sprintf("value %d of record %d", j, i)
		}
	}
	return f
}

func suiteKey(i int) string { return fmt.Sprintf("rec-%06d", i) }

// suiteFill gives sys n records through a person's edits.
func suiteFill(sys *fake.System, n int) {
	for i := range n {
		sys.Edit(suiteKey(i), suiteRecord(i))
	}
}

// suiteRig is an engine between two fakes, a and z.
type suiteRig struct {
	e     *recsync.Engine
	a, z  *fake.System
	st    store.Store
	round int // edit rounds so far
}

// scaleRigs are BenchmarkSuiteScale's synced memory rigs by N.
var scaleRigs = map[int]*suiteRig{}

func newSuiteRig(tb testing.TB, st store.Store) *suiteRig { return newSuiteRigWith(tb, st, nil) }

// suiteMapping is the shape of a system whose fields have other names than
// the canonical ones ("z_field00" for "field00"), and whose booleans are
// "Y"/"N" strings: a Mapping of 15 renames and 5 converted renames.
func suiteMapping() *transform.Mapping {
	rules := make([]transform.Rule, 0, suiteFields)
	for j := range suiteFields {
		name := fmt.Sprintf("field%02d", j)
		if j%4 == 1 { // suiteRecord's booleans
			rules = append(rules, transform.RenameWith("z_"+name, name, transform.BoolString("Y", "N")))
			continue
		}
		rules = append(rules, transform.Rename("z_"+name, name))
	}
	return transform.MustMapping(rules...)
}

// newSuiteRigWith is newSuiteRig with z's records in the shape of zm (nil:
// the canonical shape, no transforms).
func newSuiteRigWith(tb testing.TB, st store.Store, zm *transform.Mapping) *suiteRig {
	tb.Helper()
	a, z := fake.New("a"), fake.New("z")
	zs := recsync.System{ID: "z", Connector: z, BatchSize: suiteBatch}
	if zm != nil {
		zs.Inbound, zs.Outbound = zm.Inbound(), zm.Outbound()
	}
	// Batches as large as the floor's, and enough of them for 10^4 records
	// in one cycle (the default reads at most 10 batches of 100). Larger
	// data sets sync over several cycles (settle).
	e, err := recsync.New(recsync.Config{Store: st, Resolver: resolve.LastWriterWins(),
		Logger: slog.New(slog.DiscardHandler), MaxBatches: 10_000 / suiteBatch,
		Systems: []recsync.System{{ID: "a", Connector: a, BatchSize: suiteBatch}, zs}})
	if err != nil {
		tb.Fatal(err)
	}
	return &suiteRig{e: e, a: a, z: z, st: st}
}

// cycle runs one cycle and returns the patches it wrote to z and to a.
func (r *suiteRig) cycle(tb testing.TB) (toZ, toA int) {
	tb.Helper()
	rep, err := r.e.RunCycle(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return rep.Systems["z"].Writes, rep.Systems["a"].Writes
}

// settle runs cycles until one writes nothing: one per 10^4 records and a
// few more.
func (r *suiteRig) settle(tb testing.TB) {
	tb.Helper()
	most := r.a.Len()/10_000 + 6
	for range most {
		if z, a := r.cycle(tb); z == 0 && a == 0 {
			return
		}
	}
	tb.Fatalf("engine did not settle within %d cycles", most)
}

// editAll changes one field of records [from, from+k) of a, a new value per
// round.
func suiteEdit(sys *fake.System, from, k, n, round int) {
	for i := range k {
		sys.Edit(suiteKey((from+i)%n), map[string]concord.Value{"field02": fmt.Sprintf("round %d", round)})
	}
}

// copyFloor is what a sync without versions, merge or store does: read the
// changes of src after cursor and write every changed record whole to dst,
// through the connectors' own Changes and Apply, each record passed
// through out on its way (nil: as it is; a Mapping: the floor of a pipeline
// that maps the records). It returns the new cursor and the number of
// records copied.
func copyFloor(tb testing.TB, src, dst connector.Connector, out transform.Transformer, cursor connector.Cursor, create bool) (connector.Cursor, int) {
	tb.Helper()
	ctx := context.Background()
	copied := 0
	for {
		batch, err := src.Changes(ctx, cursor, suiteBatch)
		if err != nil {
			tb.Fatal(err)
		}
		patches := make([]connector.Patch, len(batch.Records))
		for i, rec := range batch.Records {
			if out != nil {
				if rec, err = out.Transform(ctx, rec); err != nil {
					tb.Fatal(err)
				}
			}
			patches[i] = connector.Patch{Key: rec.Key, Set: rec.Fields, Create: create}
		}
		if len(patches) > 0 {
			res, err := dst.Apply(ctx, patches)
			if err != nil {
				tb.Fatal(err)
			}
			for _, r := range res {
				if r.Err != nil {
					tb.Fatalf("floor: apply %s: %v", r.Key, r.Err)
				}
			}
		}
		copied += len(batch.Records)
		cursor = batch.Next
		if !batch.More {
			return cursor, copied
		}
	}
}

// BenchmarkSuiteInitialSync copies N=10^4 20-field records from one system
// into an empty one: the engine's first cycle beside the copy floor.
func BenchmarkSuiteInitialSync(b *testing.B) {
	const n = 10_000
	for _, shape := range []string{"", "mapped"} {
		var zm *transform.Mapping
		var out transform.Transformer
		prefix := ""
		if shape != "" {
			zm, prefix = suiteMapping(), "shape="+shape+"/"
			out = zm.Outbound()
		}
		b.Run(fmt.Sprintf("%sn=%d/impl=concord", prefix, n), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				r := newSuiteRigWith(b, store.NewMemory(), zm)
				suiteFill(r.a, n)
				runtime.GC() // the last op's garbage is not this op's to collect
				b.StartTimer()
				if toZ, _ := r.cycle(b); toZ != n {
					b.Fatalf("first cycle wrote %d records to z, want %d", toZ, n)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/record")
		})
		b.Run(fmt.Sprintf("%sn=%d/impl=copy-floor", prefix, n), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				a, z := fake.New("a"), fake.New("z")
				suiteFill(a, n)
				runtime.GC()
				b.StartTimer()
				if _, copied := copyFloor(b, a, z, out, "", true); copied != n {
					b.Fatalf("floor copied %d records, want %d", copied, n)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/record")
		})
	}
}

// BenchmarkSuiteEditCycle edits one field of every one of N=10^4 synced
// records in one system: the cycle that carries the edits to the other
// system (case=edit), the cycle after it that reads the engine's own
// writes back (case=echo: nothing changed), and the copy floor for the
// same edits. case=edit-mapped and echo-mapped are the edit and echo
// cycles with z's records in another shape (suiteMapping), the edits beside
// a copy floor that maps each record on its way.
func BenchmarkSuiteEditCycle(b *testing.B) {
	const n = 10_000
	for _, c := range []string{"edit", "echo", "edit-aged", "edit-mapped", "echo-mapped"} {
		b.Run(fmt.Sprintf("case=%s/n=%d/impl=concord", c, n), func(b *testing.B) {
			var zm *transform.Mapping
			if strings.HasSuffix(c, "-mapped") {
				zm = suiteMapping()
			}
			echo := strings.HasPrefix(c, "echo")
			r := newSuiteRigWith(b, store.NewMemory(), zm)
			suiteFill(r.a, n)
			r.settle(b)
			if c == "edit-aged" {
				// Every field of every record changed once: every unit
				// keeps a previous value, as in records that have lived
				// a while (BenchmarkSuiteState's age=aged).
				for i := range n {
					f := suiteRecord(i)
					for name := range f {
						f[name] = fmt.Sprintf("aged %s", name)
					}
					r.a.Edit(suiteKey(i), f)
				}
				r.settle(b)
			}
			round := 0
			for b.Loop() {
				round++
				b.StopTimer()
				suiteEdit(r.a, 0, n, n, round)
				runtime.GC()
				if !echo {
					b.StartTimer()
				}
				pprof.Do(context.Background(), pprof.Labels("phase", "edit"), func(context.Context) {
					if toZ, _ := r.cycle(b); toZ != n {
						b.Fatalf("edit cycle wrote %d records to z, want %d", toZ, n)
					}
				})
				if echo {
					b.StartTimer()
					pprof.Do(context.Background(), pprof.Labels("phase", "echo"), func(context.Context) {
						if toZ, toA := r.cycle(b); toZ != 0 || toA != 0 {
							b.Fatalf("echo cycle wrote %d+%d records, want none", toZ, toA)
						}
					})
				}
			}
			b.StopTimer()
			if !echo {
				r.settle(b)
			}
		})
	}
	for _, c := range []string{"edit", "edit-mapped"} {
		var out transform.Transformer
		if c == "edit-mapped" {
			out = suiteMapping().Outbound()
		}
		b.Run(fmt.Sprintf("case=%s/n=%d/impl=copy-floor", c, n), func(b *testing.B) {
			a, z := fake.New("a"), fake.New("z")
			suiteFill(a, n)
			cursor, _ := copyFloor(b, a, z, out, "", true)
			round := 0
			for b.Loop() {
				round++
				b.StopTimer()
				suiteEdit(a, 0, n, n, round)
				runtime.GC()
				b.StartTimer()
				var copied int
				if cursor, copied = copyFloor(b, a, z, out, cursor, false); copied != n {
					b.Fatalf("floor copied %d records, want %d", copied, n)
				}
			}
		})
	}
}

// BenchmarkSuiteScale carries k=1,000 changed records over N=10^4 and
// N=10^5 stored records (and N=10^6 with bbolt, opt-in:
// CONCORD_BENCH_HUGE=1); t(N)/t(10^4) shows whether a cycle's cost
// follows the changes (ratio near 1) or the stored records.
func BenchmarkSuiteScale(b *testing.B) {
	const k = 1000
	for _, backend := range []string{"memory", "bolt"} {
		for _, n := range []int{10_000, 100_000, 1_000_000} {
			b.Run(fmt.Sprintf("store=%s/k=%d/n=%d", backend, k, n), func(b *testing.B) {
				var r *suiteRig
				switch {
				case backend == "memory" && n > 100_000:
					b.Skip("10^6 records are measured with bbolt only")
				case backend == "memory":
					// Syncing 10^5 records takes minutes: the memory
					// rigs are kept for the next -count run.
					if r = scaleRigs[n]; r == nil {
						r = newSuiteRig(b, store.NewMemory())
						suiteFill(r.a, n)
						r.settle(b)
						scaleRigs[n] = r
					}
				case n > 100_000 && os.Getenv("CONCORD_BENCH_HUGE") == "":
					b.Skip("bbolt with 10^6 records: set CONCORD_BENCH_HUGE=1 (its setup syncs 10^6 records, about 8 GB of fakes, per run)")
				case n > 10_000 && n <= 100_000 && os.Getenv("CONCORD_BENCH_LARGE") == "":
					b.Skip("bbolt with 10^5 records: set CONCORD_BENCH_LARGE=1 (its setup syncs 10^5 records per run)")
				default:
					bs, err := boltstore.Open(filepath.Join(b.TempDir(), "concord.db"))
					if err != nil {
						b.Fatal(err)
					}
					defer bs.Close()
					r = newSuiteRig(b, bs)
					suiteFill(r.a, n)
					r.settle(b)
				}
				// A collection before the first round: the setup leaves
				// the heap near its goal, and at N = 10^6 a collection
				// then starts during the first rounds and marks the
				// fakes' 13 GB for 8 to 10 seconds, slowing every cycle
				// timed meanwhile (2 to 3 times, in the runs before this
				// line) by a cost of the harness's heap, not of the
				// engine's N. After it, the rounds allocate too little
				// to start another. Not one before every round: a cycle
				// timed just after a collection of that heap is 15 to 40
				// % slower at both sizes (cold caches), which would
				// measure the collection instead.
				runtime.GC()
				var gcs uint64
				for b.Loop() {
					r.round++
					round := r.round
					b.StopTimer()
					suiteEdit(r.a, round*k, k, n, round)
					gcs -= gcCycles()
					b.StartTimer()
					pprof.Do(context.Background(), pprof.Labels("phase", "edit"), func(context.Context) {
						if toZ, _ := r.cycle(b); toZ != k {
							b.Fatalf("cycle wrote %d records to z, want %d", toZ, k)
						}
					})
					b.StopTimer()
					gcs += gcCycles()
					r.cycle(b) // the echo, outside the measure
					b.StartTimer()
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/k, "ns/change")
				// Collections that ended inside a timed cycle: more
				// than a few hundredths per cycle at N = 10^6 means
				// the harness's heap was being marked while timed.
				b.ReportMetric(float64(gcs)/float64(b.N), "gc/op")
			})
		}
	}
}

// gcCycles returns the number of garbage collections completed so far
// (runtime/metrics, without stopping the world).
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// heapAfterGC returns the live heap after two collections.
func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkSuiteFootprint measures, for N=10^4 synced 20-field records,
// the heap the engine and the memory store keep between cycles (the live
// heap less the live heap once the engine and the store are dropped) and
// the heap of one fake's copy of the records (for scale), and the bytes of the
// encoded states in the store, per record and per field. The time it
// reports is that of an idle cycle over the synced records. meta-B/record
// and meta-B/field count the encodings' bytes other than the canonical
// values' (state.Codec.EncodedSize).
func BenchmarkSuiteFootprint(b *testing.B) {
	const n = 10_000
	ctx := context.Background()
	// The heap: the live heap with a synced engine and store, less the
	// live heap once they are dropped (the fakes stay), on a rig of its
	// own (a benchmark function may run more than once).
	h0 := heapAfterGC()
	r := newSuiteRig(b, store.NewMemory())
	suiteFill(r.a, n)
	h1 := heapAfterGC() // one fake's records
	r.settle(b)
	oneFake := float64(h1) - float64(h0)
	with := heapAfterGC()
	r.e, r.st = nil, nil
	engine := float64(with) - float64(heapAfterGC())

	mem := store.NewMemory()
	r = newSuiteRig(b, mem)
	suiteFill(r.a, n)
	r.settle(b)

	var encoded, meta, states int
	after := ""
	for {
		keys, err := mem.Keys(ctx, after, 1000)
		if err != nil {
			b.Fatal(err)
		}
		if len(keys) == 0 {
			break
		}
		got, err := mem.Load(ctx, keys)
		if err != nil {
			b.Fatal(err)
		}
		for _, k := range keys {
			st, ok := got[k]
			if !ok {
				b.Fatalf("store lists %s but cannot load it", k)
			}
			encoded += len(st.Data)
			states++
			rec, err := state.Decode(k, st)
			if err != nil {
				b.Fatal(err)
			}
			total, values, err := state.Codec{}.EncodedSize(rec)
			if err != nil || total != len(st.Data) {
				b.Fatalf("%s: re-encoded in %d bytes, stored in %d: %v", k, total, len(st.Data), err)
			}
			meta += total - values
		}
		after = keys[len(keys)-1]
	}
	if states != n {
		b.Fatalf("store holds %d states, want %d", states, n)
	}
	var logged int // bytes of the audit log the memory store keeps
	for seq := uint64(0); ; {
		page, err := mem.AuditEntries(ctx, seq, 5000)
		if err != nil {
			b.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, en := range page {
			logged += len(en.Data)
		}
		seq = page[len(page)-1].Seq
	}
	b.Run(fmt.Sprintf("n=%d/store=memory", n), func(b *testing.B) {
		for b.Loop() {
			if toZ, toA := r.cycle(b); toZ != 0 || toA != 0 {
				b.Fatalf("idle cycle wrote %d+%d records", toZ, toA)
			}
		}
		b.ReportMetric(engine/n, "heap-B/record")
		b.ReportMetric(float64(logged)/n, "audit-B/record")
		b.ReportMetric(oneFake/n, "fake-heap-B/record")
		b.ReportMetric(float64(encoded)/n, "enc-B/record")
		b.ReportMetric(float64(encoded)/(n*suiteFields), "enc-B/field")
		// Metadata: the encodings less the bytes of the canonical values
		// (issue 13: at most 24 B per field plus 64 B per record).
		b.ReportMetric(float64(meta)/n, "meta-B/record")
		b.ReportMetric(float64(meta)/(n*suiteFields), "meta-B/field")
	})
	runtime.KeepAlive(r)
}

// BenchmarkSuiteState encodes and decodes the stored state of one suite
// record after an edit cycle: what a cycle does to each record it writes
// (two encodings: before and after the writes) and reads (one decoding),
// on the state a real engine made rather than a hand-built sample. The
// bytes per encoding are reported as B/state. With age=new the record was
// edited in one field since its first sync; with age=aged every field was
// edited once, so that every unit keeps a previous value (Unit.Prev), as
// in a record that has lived a while.
//
//	go test ./sync -run '^$' -bench SuiteState -benchmem -count 10 | benchstat -
func BenchmarkSuiteState(b *testing.B) {
	for _, age := range []string{"new", "aged"} {
		b.Run("age="+age, func(b *testing.B) {
			ctx := context.Background()
			mem := store.NewMemory()
			r := newSuiteRig(b, mem)
			suiteFill(r.a, 100)
			r.settle(b)
			suiteEdit(r.a, 0, 100, 100, 1)
			r.settle(b)
			key := suiteKey(5)
			if age == "aged" {
				for f := range suiteFields {
					r.a.Edit(key, map[string]concord.Value{fmt.Sprintf("field%02d", f): fmt.Sprintf("aged %d", f)})
					r.settle(b)
				}
			}
			got, err := mem.Load(ctx, []string{key})
			if err != nil {
				b.Fatal(err)
			}
			ss, ok := got[key]
			if !ok {
				b.Fatalf("no state for %s", key)
			}
			st, err := state.Decode(key, ss)
			if err != nil {
				b.Fatal(err)
			}
			if age == "aged" {
				for _, x := range st.Units {
					if x.Name != resolve.RecordUnit && x.Value.Prev == nil {
						b.Fatalf("unit %s has no previous value", x.Name)
					}
				}
			}
			b.Run("op=encode", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := state.Encode(st); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(ss.Data)), "B/state")
			})
			b.Run("op=decode", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := state.Decode(key, ss); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(ss.Data)), "B/state")
			})
		})
	}
}
