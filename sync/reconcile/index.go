package reconcile

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
)

// bucketBits is log2 of the number of buckets a side's index is split
// into by key hash.
const bucketBits = 8

const nBuckets = 1 << bucketBits

// entry is one record in the index: 16 bytes.
type entry struct {
	key uint64 // keyHash of the canonical key
	rec uint64 // recordHash of the compared fields
}

// sideIndex is pass 1's result for one side.
type sideIndex struct {
	buckets    [nBuckets][]entry
	records    int64 // live records read
	keysStable bool  // the Transformer kept every key as it was
}

// index is pass 1 over every side.
type index struct {
	sides []*sideIndex
	// keys and matched are what the merge found: distinct key hashes,
	// and those whose records agree on every side.
	keys, matched int64
}

// mix64 is the splitmix64 finaliser: it spreads the bits of x.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// strHash is FNV-1a over s, mixed.
func strHash(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return mix64(h)
}

func keyHash(key string) uint64 { return strHash(key) }

// fieldHash is one field's contribution to a record hash.
func fieldHash(name string, v concord.Value) (uint64, error) {
	vh, err := concord.HashValue(v)
	if err != nil {
		return 0, err
	}
	return mix64(strHash(name) ^ mix64(vh+0x9e3779b97f4a7c15)), nil
}

// recordHash sums the field hashes of the compared fields (only, or every
// field when only is nil): the sum does not depend on map order, and an
// absent field adds nothing while a nil one adds its hash.
func recordHash(fields map[string]concord.Value, only []string) (uint64, string, error) {
	var h uint64
	if only != nil {
		for _, f := range only {
			v, ok := fields[f]
			if !ok {
				continue
			}
			fh, err := fieldHash(f, v)
			if err != nil {
				return 0, f, err
			}
			h += fh
		}
		return h, "", nil
	}
	for f, v := range fields {
		fh, err := fieldHash(f, v)
		if err != nil {
			return 0, f, err
		}
		h += fh
	}
	return h, "", nil
}

// index runs pass 1 over every side, one after the other.
func (r *run) index(ctx context.Context) (*index, error) {
	ix := &index{}
	for _, s := range r.sides {
		si := &sideIndex{keysStable: true}
		if st, ok := s.Scanner.(connector.ScanStarter); ok {
			var start connector.ScanStart
			err := guard("StartScan", func() (err error) {
				start, err = st.StartScan(ctx)
				return err
			})
			if err != nil {
				return nil, &SideError{System: s.System, Err: fmt.Errorf("%w: StartScan: %w", ErrScan, err)}
			}
			if e := start.Estimate; e > 0 && e < 1<<31 {
				per := int(e/nBuckets) + int(e/nBuckets)/16 + 8
				for b := range si.buckets {
					si.buckets[b] = make([]entry, 0, per)
				}
			}
		}
		err := r.scan(ctx, s, nil, func(raw, canon concord.Record) error {
			h, field, err := recordHash(canon.Fields, r.fields)
			if err != nil {
				return &SideError{System: s.System, Key: canon.Key, Err: fmt.Errorf("%w: field %q: %w", ErrTransform, field, err)}
			}
			if raw.Key != canon.Key {
				si.keysStable = false
			}
			k := keyHash(canon.Key)
			b := &si.buckets[k>>(64-bucketBits)]
			*b = append(*b, entry{key: k, rec: h})
			si.records++
			return nil
		})
		if err != nil {
			return nil, err
		}
		ix.sides = append(ix.sides, si)
	}
	return ix, nil
}

// merge compares the sides' indexes bucket by bucket and returns the key
// hashes that differ: absent from a side, with records that do not hash
// alike, or twice on one side. It releases each bucket once merged.
func (r *run) merge(ix *index) map[uint64]struct{} {
	marked := map[uint64]struct{}{}
	n := len(ix.sides)
	pos := make([]int, n)
	for b := range nBuckets {
		lists := make([][]entry, n)
		for i, si := range ix.sides {
			l := si.buckets[b]
			slices.SortFunc(l, func(x, y entry) int { return cmp.Compare(x.key, y.key) })
			lists[i] = l
			pos[i] = 0
		}
		for {
			// The smallest key hash at the head of any side.
			var k uint64
			found := false
			for i, l := range lists {
				if pos[i] < len(l) && (!found || l[pos[i]].key < k) {
					k, found = l[pos[i]].key, true
				}
			}
			if !found {
				break
			}
			ix.keys++
			differ := false
			var rec uint64
			for i, l := range lists {
				cnt := 0
				for pos[i] < len(l) && l[pos[i]].key == k {
					if i == 0 && cnt == 0 {
						rec = l[pos[i]].rec
					} else if l[pos[i]].rec != rec {
						differ = true
					}
					cnt++
					pos[i]++
				}
				if cnt != 1 {
					differ = true // absent, or twice on one side
				}
			}
			if differ {
				marked[k] = struct{}{}
			} else {
				ix.matched++
			}
		}
		for _, si := range ix.sides {
			si.buckets[b] = nil
		}
	}
	return marked
}
