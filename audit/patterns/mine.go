package patterns

import (
	"cmp"
	"context"
	"math"
	"math/bits"
	"slices"
	"strconv"
)

// item is an attribute=value pair with the rank of its attribute.
type item struct {
	rank        int
	attr, value string
}

func compareItems(a, b item) int {
	if c := cmp.Compare(a.rank, b.rank); c != 0 {
		return c
	}
	if c := cmp.Compare(a.attr, b.attr); c != 0 {
		return c
	}
	return cmp.Compare(a.value, b.value)
}

// Ranks of the attributes: the order of items in a pattern.
const (
	rankSystem = iota
	rankDirection
	rankField
	rankHour
	rankDay
	rankWeekday
	rankHost
)

var reserved = map[string]bool{AttrSystem: true, AttrDirection: true, AttrField: true,
	AttrHour: true, AttrDay: true, AttrWeekday: true, AttrErrorClass: true}

// key identifies an itemset: its item ids in order, then -1s.
type key [MaxItemsLimit]int32

func keyOf(set []int32) key {
	var k key
	for i := range k {
		k[i] = -1
	}
	copy(k[:], set)
	return k
}

// stat counts the observations an itemset covers: failed and all.
type stat struct{ f, n int }

// miner holds one run of Find.
type miner struct {
	o         Options
	n         int // observations
	failures  int
	minF      int     // support threshold on failures
	base      float64 // failures/n
	items     []item  // items frequent among failures, in order; id = index
	words     int     // uint64 words per bitset
	bits      []uint64
	fail      []uint64
	classes   []string // error class of each failed observation
	itemStats []stat
	levels    [][][]int32 // frequent itemsets by size-1, each level in lexical order
	stats     map[key]stat
}

// newMiner derives the items of every observation and keeps, as bitsets,
// those frequent among failures.
func newMiner(obs []Observation, o Options) (*miner, error) {
	m := &miner{o: o, n: len(obs), stats: map[key]stat{}}
	type raw struct{ attr, value string }
	ids := map[raw]int32{}
	var all []item
	var counts []stat
	offs := make([]int, 1, len(obs)+1)
	var its []int32
	intern := func(rank int, attr, value string) {
		r := raw{attr, value}
		id, ok := ids[r]
		if !ok {
			id = int32(len(all))
			ids[r] = id
			all = append(all, item{rank, attr, value})
			counts = append(counts, stat{})
		}
		its = append(its, id)
	}
	for i := range obs {
		ob := &obs[i]
		if d := ob.Direction; d != "" && d != Read && d != Write {
			return nil, &ObservationError{Index: i, Attr: AttrDirection, Reason: "direction " + strconv.Quote(d) + " is neither read nor write"}
		}
		for a := range ob.Attrs {
			switch {
			case a == "":
				return nil, &ObservationError{Index: i, Reason: "host attribute with an empty name"}
			case reserved[a]:
				return nil, &ObservationError{Index: i, Attr: a, Reason: "host attribute named like a derived one"}
			}
		}
		start := len(its)
		if ob.System != "" {
			intern(rankSystem, AttrSystem, string(ob.System))
		}
		if ob.Direction != "" {
			intern(rankDirection, AttrDirection, ob.Direction)
		}
		for _, f := range ob.Fields {
			if f != "" {
				intern(rankField, AttrField, f)
			}
		}
		if !ob.Time.IsZero() {
			t := ob.Time.In(o.Location)
			intern(rankHour, AttrHour, twoDigits(t.Hour()))
			intern(rankDay, AttrDay, strconv.Itoa(t.Day()))
			intern(rankWeekday, AttrWeekday, t.Weekday().String())
		}
		for a, v := range ob.Attrs {
			if v != "" {
				intern(rankHost, a, v)
			}
		}
		seg := its[start:]
		slices.Sort(seg)
		its = append(its[:start], slices.Compact(seg)...) // a field named twice is one item
		for _, id := range its[start:] {
			counts[id].n++
			if ob.Failed {
				counts[id].f++
			}
		}
		offs = append(offs, len(its))
		if ob.Failed {
			m.failures++
		}
	}
	if m.failures == 0 || m.failures == m.n {
		return m, nil
	}
	m.base = float64(m.failures) / float64(m.n)
	// 1e-9: a share times a count such as 0.05*100 is 5.000000000000001.
	m.minF = max(o.MinFailures, int(math.Ceil(o.MinShare*float64(m.failures)-1e-9)), 1)

	// Frequent items, in canonical order whatever the order of obs.
	var freq []int32
	for id, c := range counts {
		if c.f >= m.minF {
			freq = append(freq, int32(id))
		}
	}
	slices.SortFunc(freq, func(a, b int32) int { return compareItems(all[a], all[b]) })
	newID := make([]int32, len(all))
	for i := range newID {
		newID[i] = -1
	}
	for i, id := range freq {
		newID[id] = int32(i)
		m.items = append(m.items, all[id])
		m.itemStats = append(m.itemStats, counts[id])
	}
	m.words = (m.n + 63) / 64
	m.bits = make([]uint64, len(freq)*m.words)
	m.fail = make([]uint64, m.words)
	m.classes = make([]string, m.n)
	for i := range obs {
		w, b := i/64, uint64(1)<<(i%64)
		if obs[i].Failed {
			m.fail[w] |= b
			m.classes[i] = obs[i].ErrorClass
		}
		for _, id := range its[offs[i]:offs[i+1]] {
			if nid := newID[id]; nid >= 0 {
				m.bits[int(nid)*m.words+w] |= b
			}
		}
	}
	return m, nil
}

func twoDigits(h int) string {
	if h < 10 {
		return "0" + strconv.Itoa(h)
	}
	return strconv.Itoa(h)
}

func (m *miner) bitset(id int32) []uint64 {
	return m.bits[int(id)*m.words : int(id+1)*m.words]
}

// cover writes into dst the observations that hold every item of set.
func (m *miner) cover(dst []uint64, set []int32) {
	copy(dst, m.bitset(set[0]))
	for _, id := range set[1:] {
		b := m.bitset(id)
		for w := range dst {
			dst[w] &= b[w]
		}
	}
}

// mine finds every itemset of up to MaxItems items, one per attribute,
// with at least minF failures, level by level: a candidate of k items
// joins two frequent itemsets of k-1 items that differ in their last item,
// and is counted only if all its subsets of k-1 items are frequent.
func (m *miner) mine(ctx context.Context) error {
	var level [][]int32
	for id := range m.items {
		set := []int32{int32(id)}
		level = append(level, set)
		m.stats[keyOf(set)] = m.itemStats[id]
	}
	m.levels = append(m.levels, level)
	scratch := make([]uint64, m.words)
	for k := 2; k <= m.o.MaxItems && len(level) > 1; k++ {
		var next [][]int32
		for i := 0; i < len(level); {
			j := i + 1
			for j < len(level) && slices.Equal(level[j][:k-2], level[i][:k-2]) {
				j++
			}
			for a := i; a < j; a++ {
				if err := ctx.Err(); err != nil {
					return err
				}
				x := level[a][k-2]
				m.cover(scratch, level[a])
				for b := a + 1; b < j; b++ {
					y := level[b][k-2]
					if m.items[x].attr == m.items[y].attr {
						continue
					}
					cand := make([]int32, k)
					copy(cand, level[a])
					cand[k-1] = y
					if !m.subsetsFrequent(cand) {
						continue
					}
					s := m.count(scratch, m.bitset(y))
					if s.f >= m.minF {
						next = append(next, cand)
						m.stats[keyOf(cand)] = s
					}
				}
			}
			i = j
		}
		m.levels = append(m.levels, next)
		level = next
	}
	return nil
}

// subsetsFrequent reports whether every subset of cand with one item less
// is frequent. The two that built cand are.
func (m *miner) subsetsFrequent(cand []int32) bool {
	k := len(cand)
	sub := make([]int32, 0, k-1)
	for d := 0; d < k-2; d++ {
		sub = append(sub[:0], cand[:d]...)
		sub = append(sub, cand[d+1:]...)
		if _, ok := m.stats[keyOf(sub)]; !ok {
			return false
		}
	}
	return true
}

// count counts the observations of a AND b, failed and all.
func (m *miner) count(a, b []uint64) stat {
	var s stat
	for w := range a {
		c := a[w] & b[w]
		s.n += bits.OnesCount64(c)
		s.f += bits.OnesCount64(c & m.fail[w])
	}
	return s
}

// wilson returns the Wilson score interval of f successes in n trials.
func wilson(f, n int, z float64) (lo, hi float64) {
	if n == 0 {
		return 0, 1
	}
	nn := float64(n)
	p := float64(f) / nn
	z2 := z * z
	den := 1 + z2/nn
	c := p + z2/(2*nn)
	d := z * math.Sqrt(p*(1-p)/nn+z2/(4*nn*nn))
	lo = max((c-d)/den, 0)
	hi = min((c+d)/den, 1)
	return lo, hi
}

type candidate struct {
	set   []int32
	s     stat
	score float64
}

// select_ ranks the candidates and takes those that still stand out once
// the observations of better ones are set aside.
func (m *miner) select_(ctx context.Context) ([]Pattern, error) {
	var cands []candidate
	scratch := make([]uint64, m.words)
	for _, level := range m.levels {
		for _, set := range level {
			s := m.stats[keyOf(set)]
			lo, _ := wilson(s.f, s.n, m.o.Z)
			score := lo / m.base
			if score < m.o.MinLift || !m.everyItemMatters(set, s, lo, scratch) {
				continue
			}
			cands = append(cands, candidate{set, s, score})
		}
	}
	slices.SortFunc(cands, func(a, b candidate) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		if c := cmp.Compare(b.s.f, a.s.f); c != 0 {
			return c
		}
		if c := cmp.Compare(len(a.set), len(b.set)); c != 0 {
			return c
		}
		return slices.Compare(a.set, b.set)
	})
	var out []Pattern
	claimed := make([]uint64, m.words)
	cover := make([]uint64, m.words)
	for _, c := range cands {
		if len(out) == m.o.Limit {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m.cover(cover, c.set)
		var r stat
		for w := range cover {
			left := cover[w] &^ claimed[w]
			r.n += bits.OnesCount64(left)
			r.f += bits.OnesCount64(left & m.fail[w])
		}
		if lo, _ := wilson(r.f, r.n, m.o.Z); r.f < m.minF || lo/m.base < m.o.MinLift {
			continue
		}
		for w := range cover {
			claimed[w] |= cover[w]
		}
		out = append(out, m.pattern(c, cover))
	}
	return out, nil
}

// everyItemMatters reports whether set stands on its own: for every
// frequent itemset T whose cover strictly contains set's, the observations
// T covers beyond set fail clearly less often (lo >= Margin times their
// Wilson upper bound). Such T are the proper subsets of set, the empty set
// included, and more generally the subsets of set's closure (the frequent
// items every observation of set holds): so that {field=price, ...} does
// not stand for {direction=write, ...} when only writes have fields.
// cover is scratch space.
func (m *miner) everyItemMatters(set []int32, s stat, lo float64, cover []uint64) bool {
	m.cover(cover, set)
	closure := slices.Clone(set)
	for id := range m.items {
		if slices.Contains(set, int32(id)) {
			continue
		}
		b, in := m.bitset(int32(id)), true
		for w := range cover {
			if cover[w]&^b[w] != 0 {
				in = false
				break
			}
		}
		if in {
			closure = append(closure, int32(id))
		}
	}
	slices.Sort(closure)
	// Depth first over the frequent subsets of the closure: a subset that
	// is not frequent has no frequent superset.
	var stands func(start int, sub []int32) bool
	stands = func(start int, sub []int32) bool {
		t := stat{m.failures, m.n}
		if len(sub) > 0 {
			t = m.stats[keyOf(sub)]
		}
		rest := stat{t.f - s.f, t.n - s.n}
		// rest.n == 0: the same observations (set itself, or an
		// equivalent itemset, which the ranking orders).
		if rest.n > 0 {
			if _, hi := wilson(rest.f, rest.n, m.o.Z); lo < m.o.Margin*hi {
				return false
			}
		}
		if len(sub) == m.o.MaxItems {
			return true
		}
		for i := start; i < len(closure); i++ {
			next := append(sub, closure[i])
			if _, ok := m.stats[keyOf(next)]; ok && !stands(i+1, next) {
				return false
			}
		}
		return true
	}
	return stands(0, make([]int32, 0, m.o.MaxItems))
}

// pattern builds the Pattern of c, whose cover is given.
func (m *miner) pattern(c candidate, cover []uint64) Pattern {
	p := Pattern{
		Failures: c.s.f,
		Total:    c.s.n,
		Rate:     float64(c.s.f) / float64(c.s.n),
		BaseRate: m.base,
		Share:    float64(c.s.f) / float64(m.failures),
		Score:    c.score,
	}
	p.Lift = p.Rate / p.BaseRate
	for _, id := range c.set {
		p.Items = append(p.Items, Item{Attr: m.items[id].attr, Value: m.items[id].value})
	}
	byClass := map[string]int{}
	for w := range cover {
		f := cover[w] & m.fail[w]
		for f != 0 {
			b := bits.TrailingZeros64(f)
			byClass[m.classes[w*64+b]]++
			f &= f - 1
		}
	}
	for class, n := range byClass {
		p.ErrorClasses = append(p.ErrorClasses, ClassCount{Class: class, Failures: n})
	}
	slices.SortFunc(p.ErrorClasses, func(a, b ClassCount) int {
		if c := cmp.Compare(b.Failures, a.Failures); c != 0 {
			return c
		}
		return cmp.Compare(a.Class, b.Class)
	})
	p.Text = text(&p, m.o.Location)
	return p
}
