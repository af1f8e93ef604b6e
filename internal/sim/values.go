package sim

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/concordsync/concord"
)

// The canonical fields of the simulated records. Every system uses the
// canonical shape (the transforms are identities that can be made to panic),
// so the oracle compares values as the systems hold them.
const (
	fieldName   = "name"   // strings, unicode included
	fieldAmount = "amount" // numbers, huge ones included; guarded by the big-change gate
	fieldFlag   = "flag"   // bool or nil
	fieldWhen   = "when"   // times in odd zones
	fieldOwned  = "owned"  // owned by the first system (resolve.SystemOfRecord)
	fieldMisc   = "misc"   // any of the above
	fieldStreet = "street" // group "addr"
	fieldZip    = "zip"    // group "addr"
	groupAddr   = "addr"
	recordUnit  = "(record)" // resolve.RecordUnit
)

// units are the merge units the simulation edits: single fields and the
// group.
var units = []string{fieldName, fieldAmount, fieldFlag, fieldWhen, fieldOwned, fieldMisc, groupAddr}

// fieldsOf returns the fields of a unit.
func fieldsOf(u string) []string {
	if u == groupAddr {
		return []string{fieldStreet, fieldZip}
	}
	return []string{u}
}

// unitOf returns the unit of a field.
func unitOf(f string) string {
	if f == fieldStreet || f == fieldZip {
		return groupAddr
	}
	return f
}

// Value features that can be switched off with the skip list (Options.Skip).
const (
	featLMT     = "lmt-zone" // times whose zone offset is not a whole minute
	featFloat32 = "float32"  // float32 values
	featBigNum  = "bignum"   // numbers around 1<<60, as int64 and as float64
)

// zones are the time zones of generated times: odd offsets on purpose.
var zones = []*time.Location{
	time.UTC,
	time.FixedZone("IST", 5*3600+30*60),
	time.FixedZone("NPT", 5*3600+45*60),
	time.FixedZone("LINT", 14*3600),
	time.FixedZone("BIT", -12*3600),
	time.FixedZone("NST", -(3*3600 + 30*60)),
}

// lmtZones have offsets that are not whole minutes (London and Accra before
// standard time).
var lmtZones = []*time.Location{
	time.FixedZone("LMT", -75),
	time.FixedZone("LMT", -52),
}

var unicodeWords = []string{"Leeds", "Zürich", "東京", "São Paulo", "Łódź", "İstanbul", "ǅemal", "👩‍💻", "e\u0301", "Ω≈ç√", "\u200bzero", "tab\there", `q"uote`, "back\\slash"}

// valueGen makes values that identify the edit that produced them where
// the type allows (strings, numbers, times embed the edit number), so that
// the oracle can tell which edit a value came from. Bools and nil cannot
// carry an identity; the oracle is more lenient about them (see oracle.go).
type valueGen struct {
	rng  *rand.Rand
	skip map[string]bool
}

func (g *valueGen) pick(n int) int { return g.rng.IntN(n) }

// value returns a value for field f made by edit id.
func (g *valueGen) value(f string, id int) concord.Value {
	switch f {
	case fieldName, fieldOwned, fieldStreet:
		return g.str(id)
	case fieldZip:
		return fmt.Sprintf("Z%05d", id)
	case fieldAmount:
		return g.number(id)
	case fieldFlag:
		switch g.pick(3) {
		case 0:
			return true
		case 1:
			return false
		}
		return nil
	case fieldWhen:
		return g.time(id)
	}
	switch g.pick(5) { // misc: anything
	case 0:
		return g.str(id)
	case 1:
		return g.number(id)
	case 2:
		return g.time(id)
	case 3:
		return g.pick(2) == 0
	}
	return nil
}

func (g *valueGen) str(id int) string {
	return fmt.Sprintf("%s#%d", unicodeWords[g.pick(len(unicodeWords))], id)
}

// number returns a number that identifies id: small ints, decimals, and
// (feature bignum) values near 1<<60 that float64 represents exactly, as
// int64 or float64 at random; (feature float32) float32 values.
func (g *valueGen) number(id int) concord.Value {
	k := 4
	if !g.skip[featBigNum] {
		k += 2
	}
	if !g.skip[featFloat32] {
		k++
	}
	switch n := g.pick(k); {
	case n == 0:
		return id
	case n == 1:
		return int64(-id * 7)
	case n == 2:
		return float64(id) + 0.5
	case n == 3:
		return float64(id) * 1e-3
	case n == 4 && !g.skip[featBigNum]:
		return int64(1<<60 + id*512)
	case n == 5 && !g.skip[featBigNum]:
		return float64(1<<60 + id*512)
	}
	return float32(id) + 0.25
}

// time returns an instant that identifies id, in an odd zone.
func (g *valueGen) time(id int) time.Time {
	zs := zones
	if !g.skip[featLMT] {
		zs = append(zs[:len(zs):len(zs)], lmtZones...)
	}
	base := time.Date(1840+g.pick(300), time.Month(1+g.pick(12)), 1, 12, 0, 0, 0, time.UTC)
	return base.Add(time.Duration(id) * time.Second).Add(time.Duration(g.pick(1000)) * time.Nanosecond).In(zs[g.pick(len(zs))])
}
