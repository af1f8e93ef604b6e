package state

import (
	"slices"
	"strings"
)

// Entry is one name of a [Table] and its value.
type Entry[V any] struct {
	Name  string
	Value V
}

// Table maps names to values in one slice sorted by name, each name once.
// It holds what a record keeps per unit and a view per unit or per field:
// a few dozen entries, decoded and cloned as one allocation (a map takes
// several and costs more to build, clone and walk), found by binary search,
// and walked in name order (so that a walk is the same on every run).
//
// The zero Table is empty and ready to use. Range over a Table to walk
// its entries in order; change it with Set, SetAt, Delete and DeleteFunc,
// which keep the order, or by assigning an entry's Value in place (never
// its Name: Ordered reports a broken Table). A Table is a slice: a copy of
// one shares its entries, so use Clone for a copy to change apart.
type Table[V any] []Entry[V]

// TableOf returns a Table of the entries of m (nil if m is empty).
func TableOf[V any](m map[string]V) Table[V] {
	if len(m) == 0 {
		return nil
	}
	t := make(Table[V], 0, len(m))
	for k, v := range m {
		t = append(t, Entry[V]{k, v})
	}
	slices.SortFunc(t, func(a, b Entry[V]) int { return strings.Compare(a.Name, b.Name) })
	return t
}

// find returns where name is in t, or where it would be inserted.
func (t Table[V]) find(name string) (int, bool) {
	// The last entry first: Set appends in order when entries come sorted,
	// as they do from the decoder and from a walk of another Table.
	if n := len(t); n == 0 || t[n-1].Name < name {
		return n, false
	}
	// By hand: slices.BinarySearchFunc with strings.Compare takes 40 %
	// longer on a table of 21 names.
	lo, hi := 0, len(t)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if t[m].Name < name {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(t) && t[lo].Name == name
}

// Index returns where name is in t (t[i].Name == name), and whether t
// holds it. Tables of the same names have each at the same index: a
// caller that found a name in one may look at that index in another
// first (see Table.At).
func (t Table[V]) Index(name string) (int, bool) { return t.find(name) }

// IndexAt is Index, looking first at index i (where t, or a table of the
// same names, had name before).
func (t Table[V]) IndexAt(i int, name string) (int, bool) {
	if i >= 0 && i < len(t) && t[i].Name == name {
		return i, true
	}
	return t.find(name)
}

// At returns the value of name, looking first at index i (where a table of
// the same names has it).
func (t Table[V]) At(i int, name string) (V, bool) {
	if i >= 0 && i < len(t) && t[i].Name == name {
		return t[i].Value, true
	}
	return t.Get(name)
}

// Get returns the value of name and whether t holds it.
func (t Table[V]) Get(name string) (V, bool) {
	if i, ok := t.find(name); ok {
		return t[i].Value, true
	}
	var zero V
	return zero, false
}

// Value returns the value of name, the zero V if t does not hold it.
func (t Table[V]) Value(name string) V {
	v, _ := t.Get(name)
	return v
}

// SetAt is Set, looking first at index i (see At).
func (t *Table[V]) SetAt(i int, name string, v V) {
	if i >= 0 && i < len(*t) && (*t)[i].Name == name {
		(*t)[i].Value = v
		return
	}
	t.Set(name, v)
}

// Has reports whether t holds name.
func (t Table[V]) Has(name string) bool {
	_, ok := t.find(name)
	return ok
}

// Set sets the value of name.
func (t *Table[V]) Set(name string, v V) {
	i, ok := t.find(name)
	if ok {
		(*t)[i].Value = v
		return
	}
	*t = slices.Insert(*t, i, Entry[V]{name, v})
}

// Delete removes name from t, if it holds it.
func (t *Table[V]) Delete(name string) {
	if i, ok := t.find(name); ok {
		*t = slices.Delete(*t, i, i+1)
	}
}

// DeleteFunc removes every entry for which del returns true.
func (t *Table[V]) DeleteFunc(del func(name string, v V) bool) {
	*t = slices.DeleteFunc(*t, func(e Entry[V]) bool { return del(e.Name, e.Value) })
}

// Clone returns a copy of t that shares no entries with it (nil if t is
// nil). The values themselves are copied as Go copies them.
func (t Table[V]) Clone() Table[V] { return slices.Clone(t) }

// Map returns the entries of t as a map: nil if t is nil, empty if t is
// empty but not nil.
func (t Table[V]) Map() map[string]V {
	if t == nil {
		return nil
	}
	m := make(map[string]V, len(t))
	for _, e := range t {
		m[e.Name] = e.Value
	}
	return m
}

// TableOfMap is TableOf, keeping the difference between a nil map (a nil
// Table) and an empty one (an empty Table that is not nil).
func TableOfMap[V any](m map[string]V) Table[V] {
	if m != nil && len(m) == 0 {
		return Table[V]{}
	}
	return TableOf(m)
}

// Names returns the names of t in order.
func (t Table[V]) Names() []string {
	out := make([]string, len(t))
	for i, e := range t {
		out[i] = e.Name
	}
	return out
}

// Ordered reports whether t keeps its invariant: names in increasing
// order, each once.
func (t Table[V]) Ordered() bool {
	for i := 1; i < len(t); i++ {
		if t[i-1].Name >= t[i].Name {
			return false
		}
	}
	return true
}
