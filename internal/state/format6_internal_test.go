package state

import (
	"errors"
	"testing"

	"github.com/concordsync/concord"
)

// fnvName and fnvBoth compute the hashes concord.HashBytes does, in parts.
func TestFNVParts(t *testing.T) {
	for _, c := range []struct{ name, value string }{{"", ""}, {"a", ""}, {"field01", "s\x05hello"}, {"\x00", "\xff\x00"}} {
		unit, native := fnvBoth(fnvName(c.name), []byte(c.value))
		if want := concord.HashBytes([]byte(c.name + "\x00" + c.value)); unit != want {
			t.Errorf("%q, %q: unit %x; want %x", c.name, c.value, unit, want)
		}
		if want := concord.HashBytes([]byte(c.value)); native != want {
			t.Errorf("%q, %q: native %x; want %x", c.name, c.value, native, want)
		}
	}
}

// A name that is not in the encoder's table (the record changed after the
// table was built: a caller's data race) is an error, never a wrong index.
func TestFormat6NameMissingFromTable(t *testing.T) {
	var e enc6
	st := &Record{Key: "k", Fields: map[string]concord.Value{"a": "x"}}
	e.reset(nil, Codec{}, st)
	e.systems(st)
	e.buildNames(st)
	if !e.gather(st) {
		t.Fatal("the table built for the record is not its own")
	}
	st.Fields["b"] = "y"
	if e.gather(st) {
		t.Fatal("a table without b taken for the record's")
	}
	e.valueSet(map[string]concord.Value{"b": "y"})
	if !errors.Is(e.err, errChanged) {
		t.Fatalf("err = %v; want errChanged", e.err)
	}
}
