package reconcile

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/transform"
)

// genScanner is a generated system of n customers (keys C00000000 …), for
// checks of up to 10⁶ records without holding them: Scan builds each page.
// It scans in key order, or in a permuted order (another "collation"), and
// plants differences through plant.
type genScanner struct {
	n        int
	permuted bool
	// erp writes records in the ERP's shape (renamed fields), for
	// erpInbound.
	erp bool
	// plant returns how record i differs on this side: skip it, or
	// change its fields (canonical names) in place.
	plant func(i int, f map[string]concord.Value) (skip bool)
	// extra records only on this side, by number (≥ n allowed).
	extra []int
	scans int
}

var cities = []string{"Vienna", "Graz", "Linz", "Salzburg", "Innsbruck", "Bregenz", "Klagenfurt"}

var epoch = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

func genKey(i int) string {
	var b [16]byte
	k := strconv.AppendInt(b[:0], int64(i), 10)
	out := make([]byte, 0, 10)
	out = append(out, 'C')
	for range 9 - len(k) {
		out = append(out, '0')
	}
	return string(append(out, k...))
}

// genFields is record i in canonical form.
func genFields(i int) map[string]concord.Value {
	return map[string]concord.Value{
		"name":   "Customer " + strconv.Itoa(i),
		"email":  "c" + strconv.Itoa(i) + "@example.com",
		"city":   cities[i%len(cities)],
		"amount": int64(i*37) % 100000,
		"active": i%3 != 0,
		"since":  epoch.Add(time.Duration(i) * time.Minute),
	}
}

// erpNames maps canonical names to the ERP's.
var erpNames = map[string]string{"name": "cust_name", "email": "mail", "city": "town", "amount": "credit", "active": "is_active", "since": "created"}

// erpInbound is the ERP's inbound transform.
func erpInbound() transform.Transformer {
	var rules []transform.Rule
	for _, c := range slices.Sorted(func(yield func(string) bool) {
		for k := range erpNames {
			if !yield(k) {
				return
			}
		}
	}) {
		rules = append(rules, transform.Rename(erpNames[c], c))
	}
	return transform.MustMapping(rules...).Inbound()
}

func (g *genScanner) total() int { return g.n + len(g.extra) }

// at returns the number of the record at scan position p.
func (g *genScanner) at(p int) int {
	if p >= g.n {
		return g.extra[p-g.n]
	}
	if !g.permuted {
		return p
	}
	// A permutation of 0..n-1: multiply by a number coprime to n.
	const mul = 7919
	m := mul
	for gcd(m, g.n) != 1 {
		m += 2
	}
	return int((int64(p) * int64(m)) % int64(g.n))
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func (g *genScanner) record(i int) (concord.Record, bool) {
	f := genFields(i)
	if g.plant != nil && g.plant(i, f) {
		return concord.Record{}, false
	}
	if g.erp {
		out := make(map[string]concord.Value, len(f))
		for k, v := range f {
			out[erpNames[k]] = v
		}
		f = out
	}
	return concord.Record{Key: genKey(i), Fields: f}, true
}

// Scan returns the records after position cursor.
func (g *genScanner) Scan(ctx context.Context, cursor connector.Cursor, limit int) (connector.Batch, error) {
	if err := ctx.Err(); err != nil {
		return connector.Batch{}, err
	}
	p := 0
	if cursor != "" {
		var err error
		if p, err = strconv.Atoi(string(cursor)); err != nil || p < 0 {
			return connector.Batch{}, connector.Permanent(fmt.Errorf("bad cursor %q", cursor))
		}
	} else {
		g.scans++
	}
	b := connector.Batch{Records: make([]concord.Record, 0, limit)}
	for ; p < g.total() && len(b.Records) < limit; p++ {
		if r, ok := g.record(g.at(p)); ok {
			b.Records = append(b.Records, r)
		}
	}
	b.Next = connector.Cursor(strconv.Itoa(p))
	b.More = p < g.total()
	return b, nil
}

// StartScan gives the estimate.
func (g *genScanner) StartScan(context.Context) (connector.ScanStart, error) {
	return connector.ScanStart{Estimate: int64(g.total())}, nil
}

// planted is the set of differences planted in a generated pair, every
// class of them, with what the engine knows.
type planted struct {
	want      map[string]Class // "key/field" -> class
	knowledge map[string]KeyState
}

// plantedPair returns the CRM and ERP of n records (ERP in its own shape
// and in another order) with differences of every class every 1000
// records, and the differences and knowledge to expect.
func plantedPair(n int) (crm, erp *genScanner, p planted) {
	p = planted{want: map[string]Class{}, knowledge: map[string]KeyState{}}
	crmPlant := func(i int, f map[string]concord.Value) bool {
		switch i % 1000 {
		case 2:
			return true // only in the ERP
		case 10:
			f["amount"] = float64(f["amount"].(int64)) // same number, other type: no difference
			f["since"] = f["since"].(time.Time).In(time.FixedZone("CET", 3600))
		}
		return false
	}
	erpPlant := func(i int, f map[string]concord.Value) bool {
		switch i % 1000 {
		case 1, 7, 8:
			return true // only in the CRM
		case 3:
			f["city"] = "Atlantis"
		case 4:
			f["amount"] = int64(-1)
		case 5:
			f["email"] = "old@example.com"
		case 6:
			f["name"] = "Renamed"
		case 9:
			delete(f, "active")
		case 11:
			f["active"] = nil // empty, not absent: differs from a bool
		}
		return false
	}
	for i := 0; i < n; i++ {
		k := genKey(i)
		switch i % 1000 {
		case 1, 2:
			p.want[k+"/"+RecordField] = Missing
		case 3:
			p.want[k+"/city"] = Conflicting
		case 4:
			p.want[k+"/amount"] = Conflicting // the ERP owns it: the CRM is corrected
		case 5:
			p.want[k+"/email"] = Stale
			p.knowledge[k] = KeyState{Canonical: genFields(i), Behind: map[concord.SystemID][]string{"erp": {"email"}}}
		case 6:
			p.want[k+"/name"] = InFlight
			p.knowledge[k] = KeyState{Canonical: genFields(i), Pending: map[concord.SystemID]bool{"erp": true}}
		case 7:
			p.want[k+"/"+RecordField] = InFlight
			p.knowledge[k] = KeyState{Canonical: genFields(i), Pending: map[concord.SystemID]bool{"erp": true}}
		case 8:
			p.want[k+"/"+RecordField] = Stale
			p.knowledge[k] = KeyState{Canonical: genFields(i), Behind: map[concord.SystemID][]string{"erp": {RecordField}}}
		case 9, 11:
			p.want[k+"/active"] = Conflicting
		case 12:
			// The engine knows of this key but it agrees everywhere: no difference.
			p.knowledge[k] = KeyState{Canonical: genFields(i), Pending: map[concord.SystemID]bool{"crm": true}}
		}
	}
	crm = &genScanner{n: n, plant: crmPlant}
	erp = &genScanner{n: n, permuted: true, erp: true, plant: erpPlant}
	return crm, erp, p
}

// knowledgeOf serves p's knowledge and counts what it is asked.
type countingKnowledge struct {
	states map[string]KeyState
	asked  []string
	calls  int
}

func (k *countingKnowledge) Known(_ context.Context, keys []string) (map[string]KeyState, error) {
	k.calls++
	k.asked = append(k.asked, keys...)
	out := map[string]KeyState{}
	for _, key := range keys {
		if s, ok := k.states[key]; ok {
			out[key] = s
		}
	}
	return out, nil
}
