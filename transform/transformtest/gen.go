package transformtest

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/concordsync/concord"
)

// GenValue returns a rapid generator of random [concord.Value]s: nil, bools,
// strings, integers, finite floats, json.Numbers, times in UTC and other
// zones, and lists and maps of these nested up to two levels deep.
func GenValue() *rapid.Generator[concord.Value] { return genValue(2) }

func genValue(depth int) *rapid.Generator[concord.Value] {
	return rapid.Custom(func(t *rapid.T) concord.Value {
		kinds := 7
		if depth > 0 {
			kinds = 9
		}
		switch rapid.IntRange(0, kinds-1).Draw(t, "kind") {
		case 0:
			return nil
		case 1:
			return rapid.Bool().Draw(t, "bool")
		case 2:
			return rapid.String().Draw(t, "string")
		case 3:
			return rapid.Int64().Draw(t, "int")
		case 4:
			return rapid.Float64Range(-1e9, 1e9).Draw(t, "float")
		case 5:
			n := rapid.Int64().Draw(t, "decimal")
			return json.Number(strconv.FormatInt(n, 10) + ".50")
		case 6:
			sec := rapid.Int64Range(0, 4e9).Draw(t, "unix")
			zone := time.FixedZone("", 3600*rapid.IntRange(-12, 12).Draw(t, "zone"))
			return time.Unix(sec, 0).In(zone)
		case 7:
			return rapid.SliceOfN(genValue(depth-1), 0, 3).Draw(t, "list")
		default:
			return rapid.MapOfN(rapid.StringMatching(`[a-z]{1,4}`), genValue(depth-1), 0, 3).Draw(t, "map")
		}
	})
}

// GenRecord returns a rapid generator of random records: a non-empty key,
// a random subset of fields (each present or absent, so records are often
// partial) holding [GenValue] values, and a random Modified and Tag. One
// record in ten is Deleted. With no field names, field names are random.
func GenRecord(fields ...string) *rapid.Generator[concord.Record] {
	return rapid.Custom(func(t *rapid.T) concord.Record {
		rec := concord.Record{
			Key:      rapid.StringMatching(`[a-z0-9]{1,8}`).Draw(t, "key"),
			Fields:   make(map[string]concord.Value),
			Deleted:  rapid.IntRange(0, 9).Draw(t, "deleted") == 0,
			Modified: time.Unix(rapid.Int64Range(0, 4e9).Draw(t, "modified"), 0).UTC(),
			Tag:      rapid.StringMatching(`[a-f0-9]{0,6}`).Draw(t, "tag"),
		}
		names := fields
		if len(names) == 0 {
			names = rapid.SliceOfNDistinct(rapid.StringMatching(`[a-z_]{1,8}`), 0, 6, rapid.ID).Draw(t, "names")
		}
		for _, name := range names {
			if rapid.Bool().Draw(t, "has "+name) {
				rec.Fields[name] = GenValue().Draw(t, name)
			}
		}
		return rec
	})
}

// RapidTB adapts rt, the *rapid.T of one rapid.Check iteration, to
// testing.TB so that the helpers of this package can run inside a property:
// failures go to rt, which then shrinks the input to a minimal failing
// case. Everything else (Name, TempDir, Cleanup, Setenv) is t's, the test
// that called rapid.Check: cleanups registered through it run when that
// test ends, not after the iteration.
func RapidTB(t testing.TB, rt *rapid.T) testing.TB { return rapidTB{t, rt} }

type rapidTB struct {
	testing.TB
	rt *rapid.T
}

func (r rapidTB) Helper()                           {}
func (r rapidTB) Context() context.Context          { return r.rt.Context() }
func (r rapidTB) Log(args ...any)                   { r.rt.Log(args...) }
func (r rapidTB) Logf(format string, args ...any)   { r.rt.Logf(format, args...) }
func (r rapidTB) Error(args ...any)                 { r.rt.Error(args...) }
func (r rapidTB) Errorf(format string, args ...any) { r.rt.Errorf(format, args...) }
func (r rapidTB) Fatal(args ...any)                 { r.rt.Fatal(args...) }
func (r rapidTB) Fatalf(format string, args ...any) { r.rt.Fatalf(format, args...) }
func (r rapidTB) Fail()                             { r.rt.Fail() }
func (r rapidTB) FailNow()                          { r.rt.FailNow() }
func (r rapidTB) Failed() bool                      { return r.rt.Failed() }
func (r rapidTB) Skip(args ...any)                  { r.rt.Skip(args...) }
func (r rapidTB) Skipf(format string, args ...any)  { r.rt.Skipf(format, args...) }
func (r rapidTB) SkipNow()                          { r.rt.SkipNow() }
