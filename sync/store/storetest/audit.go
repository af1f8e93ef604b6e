package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/sync/store"
)

// Entry returns an audit entry with Seq seq and opaque Data that names it
// (every byte value, then seq's digits), so that entries swapped, altered or
// shared are caught.
func Entry(seq uint64) store.AuditEntry {
	return store.AuditEntry{Seq: seq, Data: Data(fmt.Sprint("audit-", seq), int(seq%7))}
}

// Entries returns Entry(from) .. Entry(from+n-1).
func Entries(from uint64, n int) []store.AuditEntry {
	out := make([]store.AuditEntry, n)
	for i := range out {
		out[i] = Entry(from + uint64(i))
	}
	return out
}

func value(t *testing.T, s store.Store, name string) []byte {
	t.Helper()
	v, err := s.Value(ctx, name)
	if err != nil {
		t.Fatalf("Value(%q): %v", name, err)
	}
	return v
}

func head(t *testing.T, s store.Store) store.AuditEntry {
	t.Helper()
	h, err := s.AuditHead(ctx)
	if err != nil {
		t.Fatalf("AuditHead: %v", err)
	}
	return h
}

func entries(t *testing.T, s store.Store, after uint64, limit int) []store.AuditEntry {
	t.Helper()
	es, err := s.AuditEntries(ctx, after, limit)
	if err != nil {
		t.Fatalf("AuditEntries(%d, %d): %v", after, limit, err)
	}
	return es
}

// sameEntries reports how got differs from want ("" if not at all): the
// same Seqs in the same order, Data byte for byte (nil and empty alike).
func sameEntries(got, want []store.AuditEntry) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d entries (seqs %v); want %d (seqs %v)", len(got), seqs(got), len(want), seqs(want))
	}
	for i := range got {
		if got[i].Seq != want[i].Seq || !bytes.Equal(got[i].Data, want[i].Data) {
			return fmt.Sprintf("entry %d: seq %d, %d bytes; want seq %d and its %d bytes unchanged", i, got[i].Seq, len(got[i].Data), want[i].Seq, len(want[i].Data))
		}
	}
	return ""
}

func seqs(es []store.AuditEntry) []uint64 {
	out := make([]uint64, len(es))
	for i, e := range es {
		out[i] = e.Seq
	}
	return out
}

// checkValues: set, overwrite, delete, empty versus nil, names at and past
// the limits, and data of every byte.
func checkValues(t *testing.T, s store.Store, _ *clock) {
	if v := value(t, s, "scan/crm"); v != nil {
		t.Fatalf("Value of a new store = %q; want nil", v)
	}
	long := strings.Repeat("n", store.MaxValueName)
	commit(t, s, &store.Commit{Values: map[string][]byte{
		"scan/crm": []byte("page 7"), "stats/phone": Data("stats", 100), "é/ключ": {0}, long: []byte("long"),
		"gone": nil, // deleting what is not there is harmless
	}})
	for name, want := range map[string][]byte{"scan/crm": []byte("page 7"), "stats/phone": Data("stats", 100), "é/ключ": {0}, long: []byte("long")} {
		if got := value(t, s, name); !bytes.Equal(got, want) || got == nil {
			t.Fatalf("Value(%.20q) = %q; want the %d bytes committed", name, got, len(want))
		}
	}
	if v := value(t, s, "gone"); v != nil {
		t.Fatalf("Value(gone) = %q after committing nil; want nil", v)
	}
	// Overwrite one, delete another, store one empty: the rest stays.
	commit(t, s, &store.Commit{Values: map[string][]byte{"scan/crm": []byte("page 8"), "stats/phone": nil, "mark": {}}})
	if v := value(t, s, "scan/crm"); string(v) != "page 8" {
		t.Fatalf("Value(scan/crm) after an overwrite = %q; want page 8", v)
	}
	if v := value(t, s, "stats/phone"); v != nil {
		t.Fatalf("Value(stats/phone) after a delete = %q; want nil", v)
	}
	if v := value(t, s, "mark"); v == nil || len(v) != 0 {
		t.Fatalf("Value(mark) stored empty = %#v; want a non-nil empty slice (nil means none)", v)
	}
	if v := value(t, s, "é/ключ"); !bytes.Equal(v, []byte{0}) {
		t.Fatalf("Value(é/ключ) = %q; want it untouched by a commit that did not name it", v)
	}
	commit(t, s, &store.Commit{Values: map[string][]byte{"mark": nil}})
	if v := value(t, s, "mark"); v != nil {
		t.Fatalf("Value(mark) after deleting the empty value = %#v; want nil", v)
	}
	// A big value, and one that looks like a store's framing.
	big := bytes.Repeat(Data("big", 0), 4096) // 1 MiB
	commit(t, s, &store.Commit{Values: map[string][]byte{"big": big, "framed": append([]byte("CSR\x02"), make([]byte, 12)...)}})
	if v := value(t, s, "big"); !bytes.Equal(v, big) {
		t.Fatalf("Value(big) = %d bytes back; want the %d committed, unchanged", len(v), len(big))
	}
	// Names no store may hold are refused, in Commit (nothing applied) and
	// in Value.
	for _, bad := range []string{"", long + "x", "a\x00b", "\xff\xfe"} {
		err := s.Commit(ctx, &store.Commit{
			States: []store.State{State("k", false, false)},
			Values: map[string][]byte{"fine": []byte("x"), bad: []byte("y")},
			Audit:  Entries(1, 1),
		})
		if !errors.Is(err, store.ErrInvalidName) {
			t.Fatalf("Commit with value name %.20q = %v; want ErrInvalidName", bad, err)
		}
		if _, err := s.Value(ctx, bad); !errors.Is(err, store.ErrInvalidName) {
			t.Fatalf("Value(%.20q) = %v; want ErrInvalidName", bad, err)
		}
	}
	if m := load(t, s, "k"); len(m) != 0 {
		t.Fatal("a commit refused for a value name stored a state")
	}
	if v := value(t, s, "fine"); v != nil {
		t.Fatalf("a commit refused for a value name stored value fine = %q", v)
	}
	if h := head(t, s); h.Seq != 0 {
		t.Fatalf("a commit refused for a value name appended audit entry %d", h.Seq)
	}
}

// checkAuditSeq: the head of an empty log, the first entry, continuity
// within and across commits; a gap, a duplicate, a repeat and an entry 0
// are refused with ErrStale.
func checkAuditSeq(t *testing.T, s store.Store, _ *clock) {
	if h := head(t, s); h.Seq != 0 || len(h.Data) != 0 {
		t.Fatalf("AuditHead of a new store = %+v; want the zero entry", h)
	}
	if es := entries(t, s, 0, 10); len(es) != 0 {
		t.Fatalf("AuditEntries of a new store = %v; want none", seqs(es))
	}
	refuse := func(what string, es ...store.AuditEntry) {
		t.Helper()
		err := s.Commit(ctx, &store.Commit{Audit: es})
		if !errors.Is(err, store.ErrStale) {
			t.Fatalf("Commit of %s (seqs %v) = %v; want ErrStale", what, seqs(es), err)
		}
	}
	refuse("entry 0 first", Entry(0))
	refuse("entry 2 first on an empty log", Entry(2))
	refuse("entry 1 twice", Entry(1), Entry(1))
	if h := head(t, s); h.Seq != 0 {
		t.Fatalf("refused commits appended: head %d", h.Seq)
	}
	commit(t, s, &store.Commit{Audit: Entries(1, 3)})
	if h := head(t, s); sameEntries([]store.AuditEntry{h}, Entries(3, 1)) != "" {
		t.Fatalf("AuditHead after entries 1-3 = seq %d, %d bytes; want entry 3", h.Seq, len(h.Data))
	}
	refuse("a gap", Entry(5))
	refuse("a duplicate", Entry(3))
	refuse("an old entry", Entry(1), Entry(2), Entry(3), Entry(4))
	refuse("a gap inside the commit", Entry(4), Entry(6))
	refuse("a repeat inside the commit", Entry(4), Entry(4))
	refuse("entries out of order", Entry(5), Entry(4))
	refuse("seq 2^64-1", store.AuditEntry{Seq: math.MaxUint64})
	commit(t, s, &store.Commit{}) // no entries: nothing to check
	commit(t, s, &store.Commit{Audit: []store.AuditEntry{{Seq: 4}, {Seq: 5, Data: []byte{}}, Entry(6)}})
	if d := sameEntries(entries(t, s, 0, 100), append(Entries(1, 3), store.AuditEntry{Seq: 4}, store.AuditEntry{Seq: 5}, Entry(6))); d != "" {
		t.Fatalf("the log after two commits: %s", d)
	}
	if h := head(t, s); h.Seq != 6 {
		t.Fatalf("AuditHead = %d; want 6", h.Seq)
	}
}

// checkAuditPaging pages through a log of 25 entries committed in batches
// of several sizes.
func checkAuditPaging(t *testing.T, s store.Store, _ *clock) {
	var all []store.AuditEntry
	for _, n := range []int{1, 10, 4, 7, 3} {
		batch := Entries(uint64(len(all))+1, n)
		commit(t, s, &store.Commit{Audit: batch})
		all = append(all, batch...)
	}
	for _, c := range []struct {
		after uint64
		limit int
		want  []store.AuditEntry
	}{
		{0, 10, all[:10]}, {10, 10, all[10:20]}, {20, 10, all[20:]}, {0, 25, all}, {0, 1000, all},
		{24, 1, all[24:]}, {24, 5, all[24:]}, {7, 1, all[7:8]},
		{25, 10, nil}, {26, 10, nil}, {100, 10, nil}, {1 << 40, 10, nil}, {1 << 63, 10, nil}, {math.MaxUint64, 10, nil},
		{0, 0, nil}, {3, -1, nil}, {0, math.MinInt, nil},
	} {
		if d := sameEntries(entries(t, s, c.after, c.limit), c.want); d != "" {
			t.Fatalf("AuditEntries(%d, %d): %s", c.after, c.limit, d)
		}
	}
	var paged []store.AuditEntry
	for after := uint64(0); ; {
		page := entries(t, s, after, 4)
		if len(page) == 0 {
			break
		}
		if len(page) > 4 {
			t.Fatalf("AuditEntries(%d, 4) returned %d entries", after, len(page))
		}
		paged = append(paged, page...)
		after = page[len(page)-1].Seq
	}
	if d := sameEntries(paged, all); d != "" {
		t.Fatalf("paging by 4: %s", d)
	}
	if h := head(t, s); sameEntries([]store.AuditEntry{h}, all[24:]) != "" {
		t.Fatalf("AuditHead = seq %d; want entry 25 unchanged", h.Seq)
	}
}

// checkAtomicValuesAndAudit: a commit refused for any reason (a stale
// state, a superseded lease, an audit entry out of sequence) applies
// neither its values nor its audit entries nor anything else.
func checkAtomicValuesAndAudit(t *testing.T, s store.Store, clk *clock) {
	commit(t, s, &store.Commit{
		States: []store.State{State("exists", false, false)},
		Values: map[string][]byte{"keep": []byte("v1"), "drop": []byte("d")},
		Audit:  Entries(1, 1),
	})
	stale := State("exists", false, false) // Rev 0, but stored at 1
	lease, err := s.AcquireLease(ctx, "p", "one", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	old := lease
	clk.advance(2 * time.Minute)
	if _, err := s.AcquireLease(ctx, "p", "two", time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		c    store.Commit
	}{
		{"a stale state", store.Commit{States: []store.State{State("new", true, false), stale}, Audit: Entries(2, 2)}},
		{"a superseded lease", store.Commit{Lease: &old, States: []store.State{State("new", true, false)}, Audit: Entries(2, 2)}},
		{"an audit gap", store.Commit{States: []store.State{State("new", true, false)}, Audit: Entries(3, 2)}},
		{"an audit entry already stored", store.Commit{States: []store.State{State("new", true, false)}, Audit: Entries(1, 2)}},
	} {
		c.c.Values = map[string][]byte{"keep": []byte("v2"), "drop": nil, "added": {}}
		c.c.Cursors = map[concord.SystemID]connector.Cursor{"a": "moved"}
		if err := s.Commit(ctx, &c.c); !errors.Is(err, store.ErrStale) {
			t.Fatalf("Commit with %s = %v; want ErrStale", c.name, err)
		}
		if v := value(t, s, "keep"); string(v) != "v1" {
			t.Fatalf("after a commit refused for %s: value keep = %q; want v1", c.name, v)
		}
		if v := value(t, s, "drop"); string(v) != "d" {
			t.Fatalf("after a commit refused for %s: value drop = %q; want d", c.name, v)
		}
		if v := value(t, s, "added"); v != nil {
			t.Fatalf("after a commit refused for %s: value added = %q; want none", c.name, v)
		}
		if d := sameEntries(entries(t, s, 0, 10), Entries(1, 1)); d != "" {
			t.Fatalf("after a commit refused for %s: the log: %s", c.name, d)
		}
		if m := load(t, s, "new"); len(m) != 0 {
			t.Fatalf("a commit refused for %s stored a state", c.name)
		}
		if cur, _ := s.Cursor(ctx, "a"); cur != "" {
			t.Fatalf("a commit refused for %s moved a cursor to %q", c.name, cur)
		}
		if k, _ := s.Keys(ctx, "", 10); !slices.Equal(k, []string{"exists"}) {
			t.Fatalf("after a commit refused for %s: Keys = %q; want [exists]", c.name, k)
		}
	}
}

// checkConcurrentAudit: appenders racing for each seq; exactly one wins it,
// and the log holds the winner's entry.
func checkConcurrentAudit(t *testing.T, s store.Store, _ *clock) {
	const workers, rounds = 4, 8
	for round := uint64(1); round <= rounds; round++ {
		var start, wg gosync.WaitGroup
		start.Add(1)
		errs := make([]error, workers)
		for w := range workers {
			wg.Go(func() {
				start.Wait()
				e := store.AuditEntry{Seq: round, Data: []byte(fmt.Sprintf("round %d by %d", round, w))}
				errs[w] = s.Commit(ctx, &store.Commit{Audit: []store.AuditEntry{e}, Values: map[string][]byte{"winner": []byte(fmt.Sprint(w))}})
			})
		}
		start.Done()
		wg.Wait()
		winner := -1
		for w, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("round %d: appenders %d and %d both appended seq %d", round, winner, w, round)
			case err == nil:
				winner = w
			case !errors.Is(err, store.ErrStale):
				t.Fatalf("round %d: appender %d: %v; want success or ErrStale", round, w, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no appender won seq %d: %v", round, round, errs)
		}
		got := entries(t, s, round-1, 10)
		if len(got) != 1 || got[0].Seq != round || string(got[0].Data) != fmt.Sprintf("round %d by %d", round, winner) {
			t.Fatalf("round %d: the log after seq %d holds %s; want only the winner %d's entry", round, round-1, fmtEntries(got), winner)
		}
		if v := value(t, s, "winner"); string(v) != fmt.Sprint(winner) {
			t.Fatalf("round %d: value winner = %q; want %d: a loser's values were applied", round, v, winner)
		}
	}
	// Appenders that retry on ErrStale, as the engine does, lose nothing.
	const each = 10
	var wg gosync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for done := 0; done < each; {
				h, err := s.AuditHead(ctx)
				if err != nil {
					errs <- err
					return
				}
				e := store.AuditEntry{Seq: h.Seq + 1, Data: []byte(fmt.Sprintf("%d/%d", w, done))}
				switch err := s.Commit(ctx, &store.Commit{Audit: []store.AuditEntry{e}}); {
				case err == nil:
					done++
				case !errors.Is(err, store.ErrStale):
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all := entries(t, s, 0, 1000)
	if len(all) != rounds+workers*each {
		t.Fatalf("the log holds %d entries; want %d", len(all), rounds+workers*each)
	}
	seen := map[string]bool{}
	for i, e := range all {
		if e.Seq != uint64(i+1) {
			t.Fatalf("entry %d has seq %d: a gap or a duplicate", i, e.Seq)
		}
		if i >= rounds {
			if seen[string(e.Data)] {
				t.Fatalf("entry %q appended twice", e.Data)
			}
			seen[string(e.Data)] = true
		}
	}
}

// checkValueAndAuditCopies: what was committed, and what was returned, is
// the caller's: changing it changes nothing stored.
func checkValueAndAuditCopies(t *testing.T, s store.Store, _ *clock) {
	v := Data("value", 10)
	es := Entries(1, 2)
	c := &store.Commit{Values: map[string][]byte{"v": v}, Audit: es}
	commit(t, s, c)
	if len(c.Values) != 1 || len(c.Audit) != 2 || c.Audit[0].Seq != 1 || c.Audit[1].Seq != 2 || !bytes.Equal(c.Audit[0].Data, Entry(1).Data) {
		t.Fatal("Commit changed the Commit it was given")
	}
	v[0], es[0].Data[0], es[1].Data[1] = 'X', 'X', 'X'
	got := value(t, s, "v")
	h := head(t, s)
	page := entries(t, s, 0, 10)
	if len(got) < 2 || len(h.Data) < 3 || len(page) != 2 || len(page[0].Data) < 3 {
		t.Fatalf("data came back truncated: value %d bytes, head %d bytes, %d entries", len(got), len(h.Data), len(page))
	}
	got[1], h.Data[2], page[0].Data[2] = 'Y', 'Y', 'Y'
	if again := value(t, s, "v"); !bytes.Equal(again, Data("value", 10)) {
		t.Fatal("a stored value shares memory with a caller")
	}
	if d := sameEntries(entries(t, s, 0, 10), Entries(1, 2)); d != "" {
		t.Fatalf("stored audit entries share memory with a caller: %s", d)
	}
	if again := head(t, s); !bytes.Equal(again.Data, Entry(2).Data) {
		t.Fatal("the stored audit head shares memory with a caller")
	}
}

// checkKeys pages through 1,000 keys with limit 7: each exactly once, in
// byte order, including non-ASCII keys and keys that are prefixes of
// others.
func checkKeys(t *testing.T, s store.Store, _ *clock) {
	if k, err := s.Keys(ctx, "", 10); err != nil || len(k) != 0 {
		t.Fatalf("Keys of a new store = %q, %v; want none", k, err)
	}
	var keys []string
	bases := []string{"a", "ab", "abc", "b", "B", "é", "ключ", "z", "~", "\u00ff", "\U0001F600", "a b", "a-b", "a/b", "0", "00"}
	for i := 0; len(keys) < 1000; i++ {
		b := bases[i%len(bases)]
		switch i / len(bases) % 3 {
		case 0:
			keys = append(keys, fmt.Sprintf("%s%d", b, i))
		case 1:
			keys = append(keys, fmt.Sprintf("%d%s", i, b))
		default:
			keys = append(keys, strings.Repeat(b, 1+i%4))
		}
	}
	keys = append(keys[:len(keys)-len(bases)], bases...) // the bases are prefixes of many
	slices.Sort(keys)
	keys = slices.Compact(keys)
	// Commit them in batches, in an order that is not byte order, some
	// flagged (Keys lists every state, whatever its flags).
	shuffled := slices.Clone(keys)
	for i := range shuffled {
		j := (i * 7919) % len(shuffled)
		shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
	}
	for start := 0; start < len(shuffled); start += 150 {
		var states []store.State
		for i, k := range shuffled[start:min(start+150, len(shuffled))] {
			states = append(states, store.State{Key: k, Pending: i%5 == 0, Held: i%11 == 0, Data: []byte(k)})
		}
		commit(t, s, &store.Commit{States: states})
	}
	var paged []string
	calls := 0
	for after := ""; ; {
		page, err := s.Keys(ctx, after, 7)
		if err != nil {
			t.Fatalf("Keys(%q, 7): %v", after, err)
		}
		calls++
		if len(page) == 0 {
			break
		}
		if len(page) > 7 {
			t.Fatalf("Keys(%q, 7) returned %d keys", after, len(page))
		}
		paged = append(paged, page...)
		after = page[len(page)-1]
		if calls > len(keys) {
			t.Fatal("paging with Keys does not end")
		}
	}
	if !slices.Equal(paged, keys) {
		missing, extra := diffKeys(keys, paged)
		t.Fatalf("paging by 7 gave %d keys; want the %d stored, each once, in byte order (missing %q, unexpected or repeated %q)", len(paged), len(keys), missing, extra)
	}
	// A start that is no key, a start past the last, limits that are not
	// positive, and a second commit of a key that does not add it twice.
	for _, c := range []struct {
		after string
		limit int
		want  []string
	}{
		{"a", 3, keys[slices.Index(keys, "a")+1:][:3]},
		{"a0", 2, firstAfter(keys, "a0", 2)},
		{"\U0010FFFF", 5, nil}, {keys[len(keys)-1], 5, nil},
		{"", 0, nil}, {"", -1, nil},
		{"", 2000, keys},
	} {
		got, err := s.Keys(ctx, c.after, c.limit)
		if err != nil {
			t.Fatalf("Keys(%q, %d): %v", c.after, c.limit, err)
		}
		if len(got) != len(c.want) || !slices.Equal(got, c.want) {
			t.Fatalf("Keys(%q, %d) = %.10q...; want %.10q...", c.after, c.limit, got, c.want)
		}
	}
	a := load(t, s, "a")["a"]
	commit(t, s, &store.Commit{States: []store.State{a}})
	if got, _ := s.Keys(ctx, "", 2000); !slices.Equal(got, keys) {
		t.Fatalf("Keys after updating a stored key: %d keys; want the same %d", len(got), len(keys))
	}
}

func firstAfter(sorted []string, after string, n int) []string {
	i, found := slices.BinarySearch(sorted, after)
	if found {
		i++
	}
	return sorted[i:][:min(n, len(sorted)-i)]
}

func diffKeys(want, got []string) (missing, extra []string) {
	seen := map[string]int{}
	for _, k := range got {
		seen[k]++
	}
	for _, k := range want {
		if seen[k] == 0 {
			missing = append(missing, k)
		}
		seen[k]--
	}
	for k, n := range seen {
		if n != 0 {
			extra = append(extra, k)
		}
	}
	return missing, extra
}

// checkCancelledNew: the methods added with values, the audit log and
// Keys honour a cancelled context, and a cancelled commit of values and
// audit entries applies nothing.
func checkCancelledNew(t *testing.T, s store.Store, _ *clock) {
	c, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Value(c, "v"); err == nil {
		t.Error("Value with a cancelled context succeeded")
	}
	if _, err := s.Keys(c, "", 10); err == nil {
		t.Error("Keys with a cancelled context succeeded")
	}
	if _, err := s.AuditHead(c); err == nil {
		t.Error("AuditHead with a cancelled context succeeded")
	}
	if _, err := s.AuditEntries(c, 0, 10); err == nil {
		t.Error("AuditEntries with a cancelled context succeeded")
	}
	if err := s.Commit(c, &store.Commit{Values: map[string][]byte{"v": []byte("x")}, Audit: Entries(1, 1)}); err == nil {
		t.Error("Commit of values and audit entries with a cancelled context succeeded")
	}
	if v := value(t, s, "v"); v != nil {
		t.Error("a cancelled commit stored a value")
	}
	if h := head(t, s); h.Seq != 0 {
		t.Error("a cancelled commit appended an audit entry")
	}
}

func fmtEntries(es []store.AuditEntry) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "[%d %q]", e.Seq, e.Data)
	}
	return b.String()
}
