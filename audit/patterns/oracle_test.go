package patterns_test

import (
	"cmp"
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/concordsync/concord"

	"github.com/concordsync/concord/audit/patterns"
)

// The oracle computes the first pattern by the rules of the package
// documentation, by brute force: every itemset is counted by scanning the
// observations, and every itemset whose cover contains another's is found
// by scanning too. It shares no code with the package.

func attrRank(attr string) int {
	switch attr {
	case "system":
		return 0
	case "direction":
		return 1
	case "field":
		return 2
	case "hour":
		return 3
	case "day":
		return 4
	case "weekday":
		return 5
	}
	return 6
}

func compareItem(a, b patterns.Item) int {
	if c := cmp.Compare(attrRank(a.Attr), attrRank(b.Attr)); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Attr, b.Attr); c != 0 {
		return c
	}
	return cmp.Compare(a.Value, b.Value)
}

func oracleWilson(f, n int, z float64) (lo, hi float64) {
	if n == 0 {
		return 0, 1
	}
	nn := float64(n)
	p := float64(f) / nn
	z2 := z * z
	den := 1 + z2/nn
	c := p + z2/(2*nn)
	d := z * math.Sqrt(p*(1-p)/nn+z2/(4*nn*nn))
	return max((c-d)/den, 0), min((c+d)/den, 1)
}

type oracleSet struct {
	items []patterns.Item
	f, n  int
	cover []bool
}

func oracleFirst(obs []patterns.Observation, o patterns.Options) []patterns.Item {
	if o.MaxItems == 0 {
		o.MaxItems = patterns.DefaultMaxItems
	}
	if o.MinFailures == 0 {
		o.MinFailures = patterns.DefaultMinFailures
	}
	if o.MinShare == 0 {
		o.MinShare = patterns.DefaultMinShare
	}
	if o.MinLift == 0 {
		o.MinLift = patterns.DefaultMinLift
	}
	if o.Margin == 0 {
		o.Margin = patterns.DefaultMargin
	}
	if o.Z == 0 {
		o.Z = patterns.DefaultZ
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	n, F := len(obs), failures(obs)
	if F == 0 || F == n {
		return nil
	}
	minF := max(o.MinFailures, int(math.Ceil(o.MinShare*float64(F)-1e-9)), 1)
	base := float64(F) / float64(n)

	// Every item held by some observation.
	seen := map[patterns.Item]bool{}
	for _, ob := range obs {
		add := func(a, v string) {
			if v != "" {
				seen[patterns.Item{Attr: a, Value: v}] = true
			}
		}
		add("system", string(ob.System))
		add("direction", ob.Direction)
		for _, f := range ob.Fields {
			add("field", f)
		}
		if !ob.Time.IsZero() {
			t := ob.Time.In(o.Location)
			add("hour", strconv.Itoa(t.Hour()/10)+strconv.Itoa(t.Hour()%10))
			add("day", strconv.Itoa(t.Day()))
			add("weekday", t.Weekday().String())
		}
		for a, v := range ob.Attrs {
			add(a, v)
		}
	}
	var items []patterns.Item
	for it := range seen {
		items = append(items, it)
	}
	slices.SortFunc(items, compareItem)

	count := func(set []patterns.Item) oracleSet {
		s := oracleSet{items: slices.Clone(set), cover: make([]bool, n)}
		for i, ob := range obs {
			if holds(ob, set, o.Location) {
				s.cover[i] = true
				s.n++
				if ob.Failed {
					s.f++
				}
			}
		}
		return s
	}
	// Every frequent itemset, by depth-first extension (a superset of an
	// infrequent itemset is infrequent).
	var sets []oracleSet
	var extend func(start int, set []patterns.Item)
	extend = func(start int, set []patterns.Item) {
		if len(set) == o.MaxItems {
			return
		}
		for i := start; i < len(items); i++ {
			if slices.ContainsFunc(set, func(it patterns.Item) bool { return it.Attr == items[i].Attr }) {
				continue
			}
			next := append(slices.Clone(set), items[i])
			s := count(next)
			if s.f < minF {
				continue
			}
			sets = append(sets, s)
			extend(i+1, next)
		}
	}
	extend(0, nil)
	setKey := func(items []patterns.Item) string {
		var b strings.Builder
		for _, it := range items {
			b.WriteString(strconv.Quote(it.Attr) + "=" + strconv.Quote(it.Value) + ";")
		}
		return b.String()
	}
	byKey := map[string]oracleSet{"": {f: F, n: n}}
	for _, s := range sets {
		byKey[setKey(s.items)] = s
	}
	type cand struct {
		s     oracleSet
		score float64
	}
	var cands []cand
	for _, s := range sets {
		lo, _ := oracleWilson(s.f, s.n, o.Z)
		if lo/base < o.MinLift {
			continue
		}
		// Every itemset whose cover contains that of s is made of items
		// that every observation of s holds.
		var closure []patterns.Item
		for _, it := range items {
			all := true
			for i, ob := range obs {
				if s.cover[i] && !holds(ob, []patterns.Item{it}, o.Location) {
					all = false
					break
				}
			}
			if all {
				closure = append(closure, it)
			}
		}
		stands := true
		for mask := 0; mask < 1<<len(closure) && stands; mask++ {
			var sub []patterns.Item
			for i, it := range closure {
				if mask&(1<<i) != 0 {
					sub = append(sub, it)
				}
			}
			t, ok := byKey[setKey(sub)]
			if !ok || t.n == s.n {
				continue // not frequent (or two values of one attribute), or the same cover
			}
			if _, hi := oracleWilson(t.f-s.f, t.n-s.n, o.Z); lo < o.Margin*hi {
				stands = false
			}
		}
		if stands {
			cands = append(cands, cand{s, lo / base})
		}
	}
	if len(cands) == 0 {
		return nil
	}
	best := slices.MinFunc(cands, func(a, b cand) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		if c := cmp.Compare(b.s.f, a.s.f); c != 0 {
			return c
		}
		if c := cmp.Compare(len(a.s.items), len(b.s.items)); c != 0 {
			return c
		}
		return slices.CompareFunc(a.s.items, b.s.items, compareItem)
	})
	return best.s.items
}

// decode builds observations and options from fuzz bytes: two bytes of
// options, then six bytes per observation over small alphabets, so that
// patterns and ties are common.
func decode(data []byte) ([]patterns.Observation, patterns.Options) {
	if len(data) < 2 {
		return nil, patterns.Options{}
	}
	o := patterns.Options{
		MaxItems:    1 + int(data[0]%6),
		MinFailures: 1 + int(data[0]/6%4),
		MinShare:    0.01 * float64(1+data[1]%10),
		MinLift:     1 + 0.5*float64(data[1]/10%4),
		Margin:      1 + 0.1*float64(data[1]/40%3),
		Limit:       100,
	}
	data = data[2:]
	systems := []string{"", "crm", "erp", "wh"}
	dirs := []string{"", "read", "write"}
	fields := []string{"a", "b", "c"}
	regions := []string{"", "EU", "US"}
	classes := []string{"", "transient", "permanent"}
	var obs []patterns.Observation
	for len(data) >= 6 && len(obs) < 300 {
		b := data[:6]
		data = data[6:]
		ob := patterns.Observation{
			System:    concord.SystemID(systems[b[0]%4]),
			Direction: dirs[b[1]%3],
			Failed:    b[5]%2 == 1,
		}
		for i, f := range fields {
			if b[2]&(1<<i) != 0 {
				ob.Fields = append(ob.Fields, f)
			}
		}
		if h := b[3] % 4; h > 0 {
			ob.Time = time.Date(2025, 1, 1+int(b[3]/4%3), int(h), 0, 0, 0, time.UTC)
		}
		if r := regions[b[4]%3]; r != "" || b[4]%7 == 0 {
			ob.Attrs = map[string]string{"region": r}
		}
		if ob.Failed {
			ob.ErrorClass = classes[b[5]/2%3]
		}
		obs = append(obs, ob)
	}
	return obs, o
}

func randomLog(r *rand.Rand) []byte {
	data := make([]byte, 2+6*(20+r.IntN(250)))
	for i := range data {
		data[i] = byte(r.UintN(256))
	}
	// Plant a cause now and then: erp writes fail.
	if r.IntN(2) == 0 {
		for i := 2; i+6 <= len(data); i += 6 {
			if data[i]%4 == 2 && data[i+1]%3 == 2 {
				data[i+5] |= 1
			} else if r.IntN(4) != 0 {
				data[i+5] &^= 1
			}
		}
	}
	return data
}

func checkAgainstOracle(t *testing.T, data []byte) {
	obs, o := decode(data)
	ps, err := patterns.Find(context.Background(), obs, o)
	if err != nil {
		t.Fatalf("Find: %v", err)
	}
	checkPatterns(t, obs, o, ps)
	want := oracleFirst(obs, o)
	var got []patterns.Item
	if len(ps) > 0 {
		got = ps[0].Items
	}
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Fatalf("first pattern (-oracle +Find):\n%s\noptions %+v, %d observations\n%v", diff, o, len(obs), texts(ps))
	}
	rev := slices.Clone(obs)
	slices.Reverse(rev)
	again, err := patterns.Find(context.Background(), rev, o)
	if err != nil {
		t.Fatal(err)
	}
	if diff := gocmp.Diff(ps, again); diff != "" {
		t.Fatalf("reversed input (-forward +reversed):\n%s", diff)
	}
}

func TestAgainstOracle(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	runs := 300
	if testing.Short() {
		runs = 30
	}
	found := 0
	for range runs {
		data := randomLog(r)
		checkAgainstOracle(t, data)
		obs, o := decode(data)
		if ps, _ := patterns.Find(context.Background(), obs, o); len(ps) > 0 {
			found++
		}
	}
	if found < runs/4 {
		t.Errorf("only %d of %d logs had a pattern: the test checks too little", found, runs)
	}
}

func FuzzFind(f *testing.F) {
	r := rand.New(rand.NewPCG(13, 14))
	for range 16 {
		f.Add(randomLog(r))
	}
	f.Add([]byte{})
	f.Add([]byte{5, 0})
	f.Fuzz(checkAgainstOracle)
}
