package reconcile

import (
	"context"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/concordsync/concord"
	"github.com/google/go-cmp/cmp"
)

func plantedConfig(n int) (Config, planted, *countingKnowledge, *genScanner, *genScanner) {
	crm, erp, p := plantedPair(n)
	k := &countingKnowledge{states: p.knowledge}
	cfg := Config{
		Sides:     []Side{{System: "crm", Scanner: crm}, {System: "erp", Scanner: erp, Transformer: erpInbound()}},
		Owners:    map[string]concord.SystemID{"amount": "erp"},
		Knowledge: k,
	}
	return cfg, p, k, crm, erp
}

// 10⁵ records a side, the ERP in another shape and another key order,
// with differences of every class planted: every one is found with its
// class, none is invented, and the plan follows the rules.
func TestPlantedDifferencesAllFoundNoneInvented(t *testing.T) {
	if testing.Short() {
		t.Skip("10^5 records a side")
	}
	const n = 100_000
	cfg, p, k, crm, erp := plantedConfig(n)
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Class{}
	for _, d := range rep.Differences {
		id := d.Key + "/" + d.Field
		if _, dup := got[id]; dup {
			t.Errorf("difference %s reported twice", id)
		}
		got[id] = d.Class
	}
	if diff := cmp.Diff(p.want, got); diff != "" {
		t.Fatalf("differences (-planted +found):\n%s", diff)
	}
	per := n / 1000
	wantChecked := map[concord.SystemID]int64{"crm": int64(n - per), "erp": int64(n - 3*per)}
	if diff := cmp.Diff(wantChecked, rep.Checked); diff != "" {
		t.Errorf("Checked (-want +got):\n%s", diff)
	}
	if rep.Keys != n || rep.Matched != int64(n-len(p.want)) || rep.Settled != 0 {
		t.Errorf("Keys %d Matched %d Settled %d; want %d, %d, 0", rep.Keys, rep.Matched, rep.Settled, n, n-len(p.want))
	}
	wantClass := map[Class]int{Missing: 2 * per, Conflicting: 4 * per, Stale: 2 * per, InFlight: 2 * per}
	if diff := cmp.Diff(wantClass, rep.ByClass); diff != "" {
		t.Errorf("ByClass (-want +got):\n%s", diff)
	}
	if got, want := rep.ByField["active"][Conflicting], 2*per; got != want {
		t.Errorf("ByField[active][conflicting] = %d; want %d", got, want)
	}
	// Each side read twice (index, detail); the engine asked only about
	// keys that differ, in batches.
	if crm.scans != 2 || erp.scans != 2 {
		t.Errorf("scans: crm %d, erp %d; want 2 each", crm.scans, erp.scans)
	}
	if len(k.asked) != len(p.want) || k.calls != (len(p.want)+999)/1000 {
		t.Errorf("knowledge asked about %d keys in %d calls; want %d keys", len(k.asked), k.calls, len(p.want))
	}
	// The plan: by the owner for amount (correct the CRM), by the
	// canonical value for the stale ones (correct the ERP), a person for
	// the rest, nothing for in-flight.
	byKind := map[string]int{}
	for _, r := range rep.Plan.Repairs {
		for _, f := range r.Fixes {
			byKind[string(r.System)+"/"+f.Field+"/"+string(f.Rule)+"/"+string(f.Winner)]++
		}
	}
	wantPlan := map[string]int{
		"crm/amount/system-of-record/erp": per,
		"erp/email/canonical/":            per,
		"erp/(record)/canonical/":         per,
	}
	if diff := cmp.Diff(wantPlan, byKind); diff != "" {
		t.Errorf("repairs (-want +got):\n%s", diff)
	}
	if got, want := len(rep.Plan.NeedsPerson), 5*per; got != want {
		t.Errorf("%d need a person; want %d (missing ×2, city, active ×2)", got, want)
	}
	if got, want := len(rep.Plan.InFlight), 2*per; got != want {
		t.Errorf("%d in flight; want %d", got, want)
	}
}

// The benchmarks compare a whole check with the cost of hashing both
// sides once (scan, transform and hash every record, keeping nothing),
// over generated sides with the planted differences.

var benchSizes = []int{100_000, 1_000_000}

func sizeName(n int) string {
	switch n {
	case 1_000_000:
		return "records=1e6"
	case 100_000:
		return "records=1e5"
	}
	return "records=" + strconv.Itoa(n)
}

func BenchmarkReconcile(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(sizeName(n), func(b *testing.B) {
			var peak peakSampler
			for b.Loop() {
				cfg, p, _, _, _ := plantedConfig(n)
				peak.start()
				rep, err := Run(context.Background(), cfg)
				peak.stop()
				if err != nil {
					b.Fatal(err)
				}
				if rep.Total() != len(p.want) {
					b.Fatalf("%d differences; want %d", rep.Total(), len(p.want))
				}
			}
			peak.report(b, n)
		})
	}
}

func BenchmarkHashBothSides(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(sizeName(n), func(b *testing.B) {
			var peak peakSampler
			for b.Loop() {
				cfg, _, _, _, _ := plantedConfig(n)
				peak.start()
				r := newRun(cfg)
				var sum uint64
				for _, s := range r.sides {
					err := r.scan(context.Background(), s, nil, func(_, canon concord.Record) error {
						h, _, err := recordHash(canon.Fields, nil)
						sum += h + keyHash(canon.Key)
						return err
					})
					if err != nil {
						b.Fatal(err)
					}
				}
				peak.stop()
				if sum == 0 {
					b.Fatal("no hash")
				}
			}
			peak.report(b, n)
		})
	}
}

// peakSampler samples the heap while a run goes: the bytes in heap
// objects (live and not yet collected) and the live heap as of the latest
// GC, above what they were at the start.
type peakSampler struct {
	base, baseLive uint64
	heap, live     uint64
	done           chan struct{}
	wg             sync.WaitGroup
}

func readHeap() (objects, live uint64) {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

func (p *peakSampler) start() {
	runtime.GC()
	p.base, p.baseLive = readHeap()
	p.done = make(chan struct{})
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			h, l := readHeap()
			if h > p.base {
				p.heap = max(p.heap, h-p.base)
			}
			if l > p.baseLive {
				p.live = max(p.live, l-p.baseLive)
			}
			select {
			case <-p.done:
				return
			case <-tick.C:
			}
		}
	}()
}

func (p *peakSampler) stop() {
	close(p.done)
	p.wg.Wait()
	runtime.GC() // the live heap at the end: what the result holds
	_, l := readHeap()
	if l > p.baseLive {
		p.live = max(p.live, l-p.baseLive)
	}
}

func (p *peakSampler) report(b *testing.B, n int) {
	b.ReportMetric(float64(p.heap)/float64(n), "peak-heap-B/record")
	b.ReportMetric(float64(p.live)/float64(n), "peak-live-B/record")
}

// indexBytes is the memory the index of a side holds, for the bound.
func (si *sideIndex) indexBytes() int {
	n := 0
	for _, b := range si.buckets {
		n += cap(b) * 16
	}
	return n
}

// The index holds 16 bytes per record per side plus slack; a ScanStarter's
// estimate keeps the slack small.
func TestIndexMemoryBound(t *testing.T) {
	const n = 50_000
	cfg, _, _, _, _ := plantedConfig(n)
	r := newRun(cfg)
	ix, err := r.index(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i, si := range ix.sides {
		perRecord := float64(si.indexBytes()) / float64(si.records)
		if perRecord > 24 {
			t.Errorf("side %d: index holds %.1f bytes per record; want ≤ 24 (16 + slack)", i, perRecord)
		}
	}
	// Without an estimate the slack of growing slices stays under half.
	plain := Config{Sides: []Side{{System: "a", Scanner: noStarter{cfg.Sides[0].Scanner}}, {System: "b", Scanner: noStarter{cfg.Sides[1].Scanner}}}}
	ix, err = newRun(plain).index(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i, si := range ix.sides {
		if perRecord := float64(si.indexBytes()) / float64(si.records); perRecord > 24 {
			t.Errorf("side %d without estimate: %.1f bytes per record; want ≤ 24", i, perRecord)
		}
	}
	r.merge(ix)
	if slices.ContainsFunc(ix.sides, func(si *sideIndex) bool { return si.indexBytes() != 0 }) {
		t.Errorf("merge kept buckets after merging them")
	}
}
