package store

import (
	"slices"
	"strings"
)

// keySet is a set of record keys that lists its first keys in byte order
// without sorting the whole set on each call: [Memory]'s pending and held
// indexes, read by every cycle.
//
// The keys are kept in a sorted slice rebuilt only now and then. Keys
// removed since are left in it (stale) and skipped by first; keys added
// since wait in added, sorted when first needs them and merged in as it
// reads. The slice is rebuilt once the changes since the last rebuild are
// as many as half the keys it holds, so each change costs O(log n)
// amortised, and first(limit) costs O(limit) plus the stale keys it passes
// over.
type keySet struct {
	live   map[string]struct{} // the members
	sorted []string            // sorted, unique; sorted[:head] are not members
	head   int
	stale  int                 // keys of sorted[head:] that are not members
	added  map[string]struct{} // members not in sorted[head:]
	order  []string            // added, sorted; nil when to be sorted again
}

func newKeySet() *keySet {
	return &keySet{live: map[string]struct{}{}, added: map[string]struct{}{}}
}

// clone returns an independent copy of k.
func (k *keySet) clone() *keySet {
	c := newKeySet()
	for key := range k.live {
		c.live[key] = struct{}{}
	}
	for key := range k.added {
		c.added[key] = struct{}{}
	}
	c.sorted, c.head, c.stale = slices.Clone(k.sorted), k.head, k.stale
	return c
}

// inSorted reports whether key is in sorted[head:].
func (k *keySet) inSorted(key string) bool {
	_, found := slices.BinarySearch(k.sorted[k.head:], key)
	return found
}

// set adds key to the set (on) or removes it.
func (k *keySet) set(key string, on bool) {
	_, member := k.live[key]
	switch {
	case on && !member:
		k.live[key] = struct{}{}
		if k.inSorted(key) {
			k.stale--
		} else {
			k.added[key] = struct{}{}
			k.order = nil
		}
	case !on && member:
		delete(k.live, key)
		if _, ok := k.added[key]; ok {
			delete(k.added, key)
			k.order = nil
		} else {
			k.stale++
		}
	default:
		return
	}
	if changes := k.stale + len(k.added); changes > 64 && changes > (len(k.sorted)-k.head)/2 {
		k.rebuild()
	}
}

// rebuild merges the added keys into sorted and drops the stale ones.
func (k *keySet) rebuild() {
	merged := make([]string, 0, len(k.live))
	k.merge(len(k.live), func(key string) { merged = append(merged, key) })
	k.sorted, k.head, k.stale = merged, 0, 0
	clear(k.added)
	k.order = nil
}

// merge calls fn with the first n members, in byte order.
func (k *keySet) merge(n int, fn func(string)) {
	if k.order == nil && len(k.added) > 0 {
		k.order = make([]string, 0, len(k.added))
		for key := range k.added {
			k.order = append(k.order, key)
		}
		slices.Sort(k.order)
	}
	i, j := k.head, 0
	for n > 0 && (i < len(k.sorted) || j < len(k.order)) {
		var key string
		if j == len(k.order) || (i < len(k.sorted) && strings.Compare(k.sorted[i], k.order[j]) < 0) {
			key = k.sorted[i]
			i++
			if _, ok := k.live[key]; !ok {
				continue
			}
		} else {
			key = k.order[j]
			j++
		}
		fn(key)
		n--
	}
}

// first returns up to limit members in byte order (none if limit is not
// positive).
func (k *keySet) first(limit int) []string {
	// Keys removed from the front are passed over once, not each call.
	for k.head < len(k.sorted) {
		if _, ok := k.live[k.sorted[k.head]]; ok {
			break
		}
		k.head++
		k.stale--
	}
	n := min(max(limit, 0), len(k.live))
	out := make([]string, 0, n)
	k.merge(n, func(key string) { out = append(out, key) })
	return out
}
