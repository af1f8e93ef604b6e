package patterns_test

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit/patterns"
)

// cause is a planted cause: observations holding every item fail at rate.
type cause struct {
	items []patterns.Item
	rate  float64
	class string
}

// Two planted causes: a monthly batch whose EU warehouse writes nearly all
// fail, and CRM writes of e-mail addresses failing one time in five.
var (
	batchCause = cause{items: []patterns.Item{
		{Attr: "system", Value: "warehouse"}, {Attr: "direction", Value: "write"},
		{Attr: "hour", Value: "03"}, {Attr: "day", Value: "1"}, {Attr: "region", Value: "EU"},
	}, rate: 0.9, class: "permanent"}
	emailCause = cause{items: []patterns.Item{
		{Attr: "system", Value: "crm"}, {Attr: "field", Value: "email"},
	}, rate: 0.2, class: "invalid"}
)

var (
	genSystems = []concord.SystemID{"crm", "erp", "warehouse"}
	genFields  = []string{"name", "email", "phone", "address", "price", "stock"}
	genRegions = []string{"EU", "US", "APAC"}
	genTiers   = []string{"gold", "silver"}
	genClasses = []string{"transient", "rate_limited", "permanent"}
)

// generate makes n attempts over the first quarter of 2025 (seeded): 15%
// of them in a monthly batch (03:00 to 04:00 on the 1st), the others at
// uniform times; systems, directions, regions and tiers uniform; a write
// touches 1 to 3 of six fields. An attempt fails at background (random
// class) unless a cause holds, then at the cause's rate (the highest).
func generate(seed uint64, n int, background float64, causes ...cause) []patterns.Observation {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	span := time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC).Sub(start)
	obs := make([]patterns.Observation, n)
	for i := range obs {
		var t time.Time
		if r.Float64() < 0.15 {
			t = time.Date(2025, time.Month(1+r.IntN(3)), 1, 3, r.IntN(60), r.IntN(60), 0, time.UTC)
		} else {
			t = start.Add(time.Duration(r.Int64N(int64(span))))
		}
		ob := patterns.Observation{
			Time:   t,
			System: genSystems[r.IntN(len(genSystems))],
			Attrs: map[string]string{
				"region": genRegions[r.IntN(len(genRegions))],
				"tier":   genTiers[r.IntN(len(genTiers))],
			},
		}
		if r.IntN(2) == 0 {
			ob.Direction = patterns.Read
		} else {
			ob.Direction = patterns.Write
			perm := r.Perm(len(genFields))[:1+r.IntN(3)]
			for _, f := range perm {
				ob.Fields = append(ob.Fields, genFields[f])
			}
		}
		rate, class := background, genClasses[r.IntN(len(genClasses))]
		for _, c := range causes {
			if holds(ob, c.items, time.UTC) && c.rate > rate {
				rate, class = c.rate, c.class
			}
		}
		if r.Float64() < rate {
			ob.Failed, ob.ErrorClass = true, class
		}
		obs[i] = ob
	}
	return obs
}

// holds reports whether ob holds every item, by the definitions of the
// package documentation, computed here independently of the package.
func holds(ob patterns.Observation, items []patterns.Item, loc *time.Location) bool {
	for _, it := range items {
		var ok bool
		t := ob.Time.In(loc)
		switch it.Attr {
		case "system":
			ok = ob.System != "" && string(ob.System) == it.Value
		case "direction":
			ok = ob.Direction != "" && ob.Direction == it.Value
		case "field":
			ok = it.Value != "" && slices.Contains(ob.Fields, it.Value)
		case "hour":
			ok = !ob.Time.IsZero() && it.Value == time.Date(2000, 1, 1, t.Hour(), 0, 0, 0, time.UTC).Format("15")
		case "day":
			ok = !ob.Time.IsZero() && it.Value == strconv.Itoa(t.Day())
		case "weekday":
			ok = !ob.Time.IsZero() && it.Value == t.Weekday().String()
		default:
			v, in := ob.Attrs[it.Attr]
			ok = in && v != "" && v == it.Value
		}
		if !ok {
			return false
		}
	}
	return true
}

// recount counts, by scanning, the observations items cover: failed, all.
func recount(obs []patterns.Observation, items []patterns.Item, loc *time.Location) (f, n int) {
	for _, ob := range obs {
		if holds(ob, items, loc) {
			n++
			if ob.Failed {
				f++
			}
		}
	}
	return f, n
}

func failures(obs []patterns.Observation) int {
	f := 0
	for _, ob := range obs {
		if ob.Failed {
			f++
		}
	}
	return f
}

// sameItems reports whether a and b hold the same items, in any order.
func sameItems(a, b []patterns.Item) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(it patterns.Item) bool { return !slices.Contains(b, it) })
}
