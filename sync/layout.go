package sync

import (
	"fmt"
	"slices"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/resolve"
)

// layout maps canonical fields to the units they are merged in: a field of a
// declared group belongs to the group; any other field is a unit by itself.
type layout struct {
	group  map[string]string   // field -> group name
	fields map[string][]string // unit -> its fields, sorted
	groups []string            // the group names, sorted: no field may have one (groupNamed)
}

func newLayout(groups map[string][]string) (*layout, error) {
	l := &layout{group: map[string]string{}, fields: map[string][]string{}}
	for name, fs := range groups {
		if name == "" || name == resolve.RecordUnit {
			return nil, fmt.Errorf("group name %q is reserved", name)
		}
		if len(fs) < 2 {
			return nil, fmt.Errorf("group %q: a group needs at least two fields, got %d", name, len(fs))
		}
		sorted := slices.Clone(fs)
		slices.Sort(sorted)
		for _, f := range sorted {
			if f == "" {
				return nil, fmt.Errorf("group %q: empty field name", name)
			}
			if other, ok := l.group[f]; ok {
				return nil, fmt.Errorf("field %q is in groups %q and %q: a field belongs to one group at most", f, other, name)
			}
			if _, ok := groups[f]; ok {
				return nil, fmt.Errorf("field %q of group %q is also a group name", f, name)
			}
			l.group[f] = name
		}
		l.fields[name] = sorted
		l.groups = append(l.groups, name)
	}
	slices.Sort(l.groups)
	return l, nil
}

// groupNamed returns the first field of fields that has a group's name, if
// any. A group's name is its unit's: a field of that name (not one of the
// group's, which config forbids) would be merged as the group, and its value
// lost.
func (l *layout) groupNamed(fields map[string]concord.Value) (string, bool) {
	for _, g := range l.groups {
		if _, ok := fields[g]; ok {
			return g, true
		}
	}
	return "", false
}

// unitOf returns the unit of field f.
func (l *layout) unitOf(f string) string {
	if len(l.group) == 0 {
		return f
	}
	if g, ok := l.group[f]; ok {
		return g
	}
	return f
}

// isGroup reports whether u is a declared group.
func (l *layout) isGroup(u string) bool { return len(l.group) > 0 && len(l.fields[u]) > 1 }

// fieldsOf returns the fields of unit u (nil for the record's existence).
// The slice is shared and must not be modified. Not safe for concurrent use
// (single-field units are added on first use).
func (l *layout) fieldsOf(u string) []string {
	if u == resolve.RecordUnit {
		return nil
	}
	if fs, ok := l.fields[u]; ok {
		return fs
	}
	fs := []string{u}
	l.fields[u] = fs
	return fs
}
