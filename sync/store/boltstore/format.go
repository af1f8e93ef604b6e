package boltstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/concordsync/concord/internal/checksum"
	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/sync/store"
)

// FormatVersion is the file format version this package writes. Version 2
// added a checksum to every stored value, an entry count per bucket and
// the actor and dead-letter sequences in the meta bucket; version 3 added
// the engine's values and the audit log; version 4 indexed the dead
// letters by record key and by class. Files of older versions are migrated
// when opened.
const FormatVersion = 4

// kind marks a bbolt file as a Concord store.
const kind = "concord/boltstore"

var (
	bMeta        = []byte("meta")
	bActors      = []byte("actors")
	bCursors     = []byte("cursors")
	bStates      = []byte("states")
	bPending     = []byte("pending")
	bHeld        = []byte("held")
	bDeadLetters = []byte("deadletters")
	bLeases      = []byte("leases")
	bValues      = []byte("values")
	bAudit       = []byte("audit")
	// The dead letters' index (format 4): by ID, the letter's record key
	// and class (to remove its entries); by key and by class, the IDs.
	bDeadIndex   = []byte("deadindex")
	bDeadKeys    = []byte("deadkeys")
	bDeadClasses = []byte("deadclasses")

	kKind       = []byte("kind")
	kFormat     = []byte("format")
	kEpoch      = []byte("epoch")
	kGeneration = []byte("generation")
	kActorSeq   = []byte("actorseq")
	kDeadSeq    = []byte("deadseq")
)

// format2Counted are the buckets of formats 1 and 2 besides meta; format 2
// keeps the number of entries of each in the meta bucket.
var format2Counted = [][]byte{bActors, bCursors, bStates, bPending, bHeld, bDeadLetters, bLeases}

// format3Counted are the counted buckets of format 3: format 2's, the
// values and the audit log.
var format3Counted = append(slices.Clip(format2Counted), bValues, bAudit)

// counted are the buckets of the current format whose number of entries
// the meta bucket keeps: format 3's and the dead letters' index.
var counted = append(slices.Clip(format3Counted), bDeadIndex, bDeadKeys, bDeadClasses)

// buckets are the buckets of the current format.
var buckets = append([][]byte{bMeta}, counted...)

// bucketsOf returns the buckets of format version v (2 or later) and those
// of them that are counted.
func bucketsOf(v uint64) (all, count [][]byte) {
	switch v {
	case 2:
		return append([][]byte{bMeta}, format2Counted...), format2Counted
	case 3:
		return append([][]byte{bMeta}, format3Counted...), format3Counted
	}
	return buckets, counted
}

// countKey is the meta key holding the number of entries in bucket.
func countKey(bucket []byte) []byte { return append([]byte("count/"), bucket...) }

// sealedMeta are the meta keys whose values are sealed uint64s, in a file
// whose counted buckets are count.
func sealedMeta(count [][]byte) [][]byte {
	keys := [][]byte{kEpoch, kGeneration, kActorSeq, kDeadSeq}
	for _, b := range count {
		keys = append(keys, countKey(b))
	}
	return keys
}

// layout is the format version a Store writes and how to reach it from the
// older ones: migrations[i] turns a file of version i+1 into version i+2.
// Tests use a layout of their own to exercise migration.
type layout struct {
	version    uint64
	migrations []func(tx *bolt.Tx) error
}

// currentLayout is the layout of [FormatVersion].
func currentLayout() layout {
	return layout{version: FormatVersion, migrations: []func(tx *bolt.Tx) error{migrate1to2, migrate2to3, migrate3to4}}
}

// what names a stored value in errors.
func what(bucket, key []byte) string {
	switch string(bucket) {
	case string(bStates):
		return fmt.Sprintf("record %q", key)
	case string(bDeadLetters):
		return fmt.Sprintf("dead letter %x", key)
	case string(bActors):
		return fmt.Sprintf("actor %q", key)
	case string(bCursors):
		return fmt.Sprintf("cursor of system %q", key)
	case string(bLeases):
		return fmt.Sprintf("lease %q", key)
	case string(bPending):
		return fmt.Sprintf("pending index entry %q", key)
	case string(bHeld):
		return fmt.Sprintf("held index entry %q", key)
	case string(bValues):
		return fmt.Sprintf("value %q", key)
	case string(bAudit):
		if len(key) == 8 {
			return fmt.Sprintf("audit entry %d", binary.BigEndian.Uint64(key))
		}
		return fmt.Sprintf("audit entry key %x", key)
	case string(bDeadIndex):
		if len(key) == 8 {
			return fmt.Sprintf("index entry of dead letter %d", binary.BigEndian.Uint64(key))
		}
		return fmt.Sprintf("dead letter index key %x", key)
	case string(bDeadKeys), string(bDeadClasses):
		by := "key"
		if string(bucket) == string(bDeadClasses) {
			by = "class"
		}
		if s, id, ok := parseIndexKey(key); ok {
			return fmt.Sprintf("dead letter %d in the index by %s %q", id, by, s)
		}
		return fmt.Sprintf("dead letter index by %s: key %x", by, key)
	}
	return fmt.Sprintf("%s %q", bucket, key)
}

// seal returns the stored form of payload under bucket and key.
func seal(bucket, key, payload []byte) []byte {
	return checksum.Seal(make([]byte, 0, len(payload)+checksum.Size), string(bucket), key, payload)
}

// unseal checks a stored value and returns its payload, or an error
// wrapping ErrDamaged that names the value.
func unseal(bucket, key, v []byte) ([]byte, error) {
	p, err := checksum.Unseal(string(bucket), key, v)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrDamaged, what(bucket, key), err)
	}
	return p, nil
}

// get returns the payload stored at key in bucket (nil, nil if absent).
func get(tx *bolt.Tx, bucket, key []byte) ([]byte, error) {
	v := tx.Bucket(bucket).Get(key)
	if v == nil {
		return nil, nil
	}
	return unseal(bucket, key, v)
}

// getMeta returns a sealed uint64 of the meta bucket.
func getMeta(tx *bolt.Tx, key []byte) (uint64, error) {
	p, err := get(tx, bMeta, key)
	if err != nil {
		return 0, err
	}
	if len(p) != 8 {
		return 0, fmt.Errorf("%w: meta %q: %d bytes, not 8", ErrDamaged, key, len(p))
	}
	return binary.BigEndian.Uint64(p), nil
}

func putMeta(tx *bolt.Tx, key []byte, v uint64) error {
	if err := tx.Bucket(bMeta).Put(key, seal(bMeta, key, binary.BigEndian.AppendUint64(nil, v))); err != nil {
		return fmt.Errorf("put meta %q: %w", key, err)
	}
	return nil
}

// wtx is a read-write transaction that seals what it puts and keeps the
// entry counts of the meta bucket.
type wtx struct {
	tx    *bolt.Tx
	delta map[string]int64
}

func newWtx(tx *bolt.Tx) *wtx { return &wtx{tx: tx, delta: map[string]int64{}} }

func (w *wtx) put(bucket, key, payload []byte) error {
	return w.putSealed(bucket, key, seal(bucket, key, payload))
}

// putSealed puts a value already sealed for bucket and key.
func (w *wtx) putSealed(bucket, key, sealed []byte) error {
	b := w.tx.Bucket(bucket)
	if b.Get(key) == nil {
		w.delta[string(bucket)]++
	}
	if err := b.Put(key, sealed); err != nil {
		return fmt.Errorf("%s: %w", what(bucket, key), err)
	}
	return nil
}

func (w *wtx) del(bucket, key []byte) error {
	b := w.tx.Bucket(bucket)
	if b.Get(key) == nil {
		return nil
	}
	w.delta[string(bucket)]--
	if err := b.Delete(key); err != nil {
		return fmt.Errorf("removing %s: %w", what(bucket, key), err)
	}
	return nil
}

// next increments and returns the sequence kept at meta key seq.
func (w *wtx) next(seq []byte) (uint64, error) {
	n, err := getMeta(w.tx, seq)
	if err != nil {
		return 0, err
	}
	if err := putMeta(w.tx, seq, n+1); err != nil {
		return 0, err
	}
	return n + 1, nil
}

// finish writes the changed entry counts.
func (w *wtx) finish() error {
	for _, b := range counted {
		d := w.delta[string(b)]
		if d == 0 {
			continue
		}
		n, err := getMeta(w.tx, countKey(b))
		if err != nil {
			return err
		}
		if err := putMeta(w.tx, countKey(b), uint64(int64(n)+d)); err != nil {
			return err
		}
	}
	clear(w.delta)
	return nil
}

// classify inspects a file: it returns its format version, or 0 for an
// empty bbolt file (no buckets) that Open may initialise. A foreign file is
// ErrNotAStore, a newer one ErrNewerFormat.
func classify(tx *bolt.Tx, l layout) (uint64, error) {
	meta := tx.Bucket(bMeta)
	if meta == nil {
		if k, _ := tx.Cursor().First(); k == nil {
			return 0, nil
		}
		return 0, fmt.Errorf("%w: a bbolt file without a %q bucket", ErrNotAStore, bMeta)
	}
	if k := meta.Get(kKind); !bytes.Equal(k, []byte(kind)) {
		return 0, fmt.Errorf("%w: its meta bucket has kind %q, not %q", ErrNotAStore, k, kind)
	}
	v, ok := getUint(meta, kFormat)
	if !ok || v == 0 {
		return 0, fmt.Errorf("%w: no valid format version in a Concord store", ErrDamaged)
	}
	if v > l.version {
		return 0, fmt.Errorf("%w: format version %d; this version of Concord reads up to %d",
			ErrNewerFormat, v, l.version)
	}
	return v, nil
}

// checkContents verifies every value of a file of format v, 2 or later:
// the buckets are exactly the format's, every value's checksum matches (so
// a flipped key or value is found), every bucket holds as many entries as
// the meta bucket counts (so a lost entry is found), the sequences are not
// behind the numbers they gave, and the audit log is numbered 1, 2, 3, ...
// without gaps. Record states are not decoded here: Load decodes them.
func checkContents(tx *bolt.Tx, v uint64) error {
	buckets, counted := bucketsOf(v)
	c := tx.Cursor()
	var names []string
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v != nil || !slices.ContainsFunc(buckets, func(b []byte) bool { return bytes.Equal(b, k) }) {
			return fmt.Errorf("%w: unexpected entry %q at the top of the file", ErrDamaged, k)
		}
		names = append(names, string(k))
	}
	if len(names) != len(buckets) {
		return fmt.Errorf("%w: buckets %q; want %q", ErrDamaged, names, buckets)
	}
	meta := map[string]uint64{}
	for _, k := range sealedMeta(counted) {
		n, err := getMeta(tx, k)
		if err != nil {
			return err
		}
		meta[string(k)] = n
	}
	n := 0
	mc := tx.Bucket(bMeta).Cursor()
	for k, _ := mc.First(); k != nil; k, _ = mc.Next() {
		n++
	}
	if n != len(meta)+2 {
		return fmt.Errorf("%w: the meta bucket has %d entries; want %d", ErrDamaged, n, len(meta)+2)
	}
	for _, name := range counted {
		var n uint64
		err := forEach(tx, name, func(k, p []byte) error {
			n++
			if bytes.Equal(name, bAudit) && len(k) == 8 && binary.BigEndian.Uint64(k) != n {
				return fmt.Errorf("%w: %s follows entry %d: the log has a gap", ErrDamaged, what(name, k), n-1)
			}
			return checkEntry(name, k, p, meta)
		})
		if err != nil {
			return err
		}
		if want := meta[string(countKey(name))]; n != want {
			return fmt.Errorf("%w: bucket %q has %d entries; the meta bucket counts %d", ErrDamaged, name, n, want)
		}
	}
	if v >= 4 {
		// Every dead letter has one entry in each index.
		n := meta[string(countKey(bDeadLetters))]
		for _, name := range [][]byte{bDeadIndex, bDeadKeys, bDeadClasses} {
			if m := meta[string(countKey(name))]; m != n {
				return fmt.Errorf("%w: bucket %q has %d entries for %d dead letters", ErrDamaged, name, m, n)
			}
		}
	}
	return nil
}

// forEach calls fn with every key and unsealed payload of bucket; a
// nested bucket is damage.
func forEach(tx *bolt.Tx, bucket []byte, fn func(k, p []byte) error) error {
	c := tx.Bucket(bucket).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil {
			return fmt.Errorf("%w: %s is a bucket", ErrDamaged, what(bucket, k))
		}
		p, err := unseal(bucket, k, v)
		if err != nil {
			return err
		}
		if err := fn(k, p); err != nil {
			return err
		}
	}
	return nil
}

// checkEntry checks the shape of one payload.
func checkEntry(bucket, k, p []byte, meta map[string]uint64) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrDamaged, what(bucket, k), fmt.Sprintf(format, args...))
	}
	switch string(bucket) {
	case string(bActors):
		if len(p) != 4 {
			return bad("%d bytes, not 4", len(p))
		}
		if n := binary.BigEndian.Uint32(p); n == 0 || uint64(n) > meta[string(kActorSeq)] {
			return bad("number %d, but the last one given is %d", n, meta[string(kActorSeq)])
		}
	case string(bStates):
		if len(p) < 8 {
			return bad("no revision")
		}
	case string(bPending), string(bHeld):
		if len(p) != 0 {
			return bad("%d bytes, not 0", len(p))
		}
	case string(bDeadLetters):
		if len(k) != 8 {
			return bad("key of %d bytes, not 8", len(k))
		}
		if id := binary.BigEndian.Uint64(k); id == 0 || id > meta[string(kDeadSeq)] {
			return bad("number %d, but the last one given is %d", id, meta[string(kDeadSeq)])
		}
	case string(bLeases):
		if _, err := decodeLease(string(k), p); err != nil {
			return err
		}
	case string(bValues):
		if err := store.CheckValueName(string(k)); err != nil {
			return bad("%v", err)
		}
	case string(bAudit):
		if len(k) != 8 {
			return bad("key of %d bytes, not 8", len(k))
		}
	case string(bDeadIndex):
		if len(k) != 8 {
			return bad("key of %d bytes, not 8", len(k))
		}
		if id := binary.BigEndian.Uint64(k); id == 0 || id > meta[string(kDeadSeq)] {
			return bad("number %d, but the last one given is %d", id, meta[string(kDeadSeq)])
		}
		if _, _, ok := parseLetterIndex(p); !ok {
			return bad("not a key and a class")
		}
	case string(bDeadKeys), string(bDeadClasses):
		if _, id, ok := parseIndexKey(k); !ok || id == 0 || id > meta[string(kDeadSeq)] {
			return bad("not a length-prefixed string and a dead letter number up to %d", meta[string(kDeadSeq)])
		}
		if len(p) != 0 {
			return bad("%d bytes, not 0", len(p))
		}
	}
	return nil
}

// lenPrefixed appends s to b after its length (a uvarint), so that no
// encoding is a prefix of another's: a scan of the entries of one key
// finds none of a longer key that begins with it.
func lenPrefixed(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// indexKey is the key of dead letter id's entry in the index by key or by
// class: s length-prefixed, then the ID (big-endian, so that one key's or
// class's entries are in ID order).
func indexKey(s string, id uint64) []byte {
	return binary.BigEndian.AppendUint64(lenPrefixed(nil, s), id)
}

// parseIndexKey reverses indexKey.
func parseIndexKey(k []byte) (string, uint64, bool) {
	n, w := binary.Uvarint(k)
	if w <= 0 || uint64(len(k)-w) != n+8 {
		return "", 0, false
	}
	return string(k[w : len(k)-8]), binary.BigEndian.Uint64(k[len(k)-8:]), true
}

// letterIndex is the payload of a dead letter's entry in bDeadIndex: its
// record key, length-prefixed, then its class.
func letterIndex(key, class string) []byte { return append(lenPrefixed(nil, key), class...) }

// parseLetterIndex reverses letterIndex.
func parseLetterIndex(p []byte) (key, class string, ok bool) {
	n, w := binary.Uvarint(p)
	if w <= 0 || uint64(len(p)-w) < n {
		return "", "", false
	}
	return string(p[w : w+int(n)]), string(p[w+int(n):]), true
}

// indexDead adds dead letter id, of record key and class, to the index.
func indexDead(w *wtx, id uint64, key, class string) error {
	idk := binary.BigEndian.AppendUint64(nil, id)
	return firstErr(w.put(bDeadIndex, idk, letterIndex(key, class)),
		w.put(bDeadKeys, indexKey(key, id), nil), w.put(bDeadClasses, indexKey(class, id), nil))
}

// removeDead removes dead letter id and its index entries; an ID not
// stored is ignored. A stored letter without an index entry is damage.
func removeDead(w *wtx, id uint64) error {
	idk := binary.BigEndian.AppendUint64(nil, id)
	if w.tx.Bucket(bDeadLetters).Get(idk) == nil {
		return nil
	}
	p, err := get(w.tx, bDeadIndex, idk)
	if err != nil {
		return err
	}
	key, class, ok := parseLetterIndex(p)
	if p == nil || !ok {
		return fmt.Errorf("%w: dead letter %d has no valid index entry", ErrDamaged, id)
	}
	return firstErr(w.del(bDeadLetters, idk), w.del(bDeadIndex, idk),
		w.del(bDeadKeys, indexKey(key, id)), w.del(bDeadClasses, indexKey(class, id)))
}

// migrate3to4 turns a format 3 file into format 4 in place: it adds the
// buckets of the dead letters' index, and their counts, and indexes every
// dead letter by the record key and class its Data holds
// (state.LetterIndex, which opens no sealed value). The file was checked
// whole by checkContents before, checksums included; Data is opaque to the
// store, so one that is not the engine's encoding (written through the
// store API by a host or a test) is not damage: it is indexed under the
// empty key and class, and still read by ID and by DeadLetters.
func migrate3to4(tx *bolt.Tx) error {
	for _, name := range [][]byte{bDeadIndex, bDeadKeys, bDeadClasses} {
		if _, err := tx.CreateBucket(name); err != nil {
			return fmt.Errorf("%w: create bucket %q: %w", ErrDamaged, name, err)
		}
		if err := putMeta(tx, countKey(name), 0); err != nil {
			return err
		}
	}
	type entry struct {
		id         uint64
		key, class string
	}
	var entries []entry
	err := forEach(tx, bDeadLetters, func(k, p []byte) error {
		if len(k) != 8 {
			return fmt.Errorf("%w: dead letter key %x", ErrDamaged, k)
		}
		_, key, class, err := state.LetterIndex(p)
		if err != nil {
			key, class = "", ""
		}
		entries = append(entries, entry{binary.BigEndian.Uint64(k), key, class})
		return nil
	})
	if err != nil {
		return err
	}
	w := newWtx(tx)
	for _, e := range entries {
		if err := indexDead(w, e.id, e.key, e.class); err != nil {
			return err
		}
	}
	return w.finish()
}

// migrate2to3 turns a format 2 file into format 3 in place: it adds the
// empty buckets of the engine's values and of the audit log, and their
// counts. Nothing else changes, so a format 2 file was checked whole (by
// checkContents) before.
func migrate2to3(tx *bolt.Tx) error {
	for _, name := range [][]byte{bValues, bAudit} {
		if _, err := tx.CreateBucket(name); err != nil {
			return fmt.Errorf("%w: create bucket %q: %w", ErrDamaged, name, err)
		}
		if err := putMeta(tx, countKey(name), 0); err != nil {
			return err
		}
	}
	return nil
}

// migrate1to2 turns a format 1 file into format 2 in place: every value is
// checked as format 1 wrote it (states and dead letters decoded, sizes
// checked), then sealed; the entry counts and the actor and dead-letter
// sequences (in format 1 bbolt's bucket sequences) go to the meta bucket.
// A value that format 1 could not have written is damage: the migration
// fails and the file is left as it was.
func migrate1to2(tx *bolt.Tx) error {
	meta := tx.Bucket(bMeta)
	for _, name := range format2Counted {
		if tx.Bucket(name) == nil {
			return fmt.Errorf("%w: no %q bucket", ErrDamaged, name)
		}
	}
	for _, k := range [][]byte{kEpoch, kGeneration} {
		n, ok := getUint(meta, k)
		if !ok {
			return fmt.Errorf("%w: meta %q is not 8 bytes", ErrDamaged, k)
		}
		if err := putMeta(tx, k, n); err != nil {
			return err
		}
	}
	actorSeq, deadSeq := tx.Bucket(bActors).Sequence(), tx.Bucket(bDeadLetters).Sequence()
	seqs := map[string]uint64{string(kActorSeq): actorSeq, string(kDeadSeq): deadSeq}
	check := func(bucket, k, v []byte) error {
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%w: format 1 %s: %s", ErrDamaged, what(bucket, k), fmt.Sprintf(format, args...))
		}
		switch string(bucket) {
		case string(bStates):
			return checkFormat1State(string(k), v)
		case string(bDeadLetters):
			if _, err := state.DecodeDeadLetter(v); err != nil {
				return bad("%v", err)
			}
		case string(bPending), string(bHeld):
			if len(v) != 0 {
				return bad("%d bytes, not 0", len(v))
			}
			return nil
		}
		return checkEntry(bucket, k, v, seqs)
	}
	for _, name := range format2Counted {
		b := tx.Bucket(name)
		var keys, vals [][]byte
		err := b.ForEach(func(k, v []byte) error {
			if v == nil {
				return fmt.Errorf("%w: format 1 %s is a bucket", ErrDamaged, what(name, k))
			}
			if err := check(name, k, v); err != nil {
				return err
			}
			keys, vals = append(keys, bytes.Clone(k)), append(vals, bytes.Clone(v))
			return nil
		})
		if err != nil {
			return err
		}
		for i, k := range keys {
			if err := b.Put(k, seal(name, k, vals[i])); err != nil {
				return fmt.Errorf("%s: %w", what(name, k), err)
			}
		}
		if err := putMeta(tx, countKey(name), uint64(len(keys))); err != nil {
			return err
		}
	}
	for k, n := range seqs {
		if err := putMeta(tx, []byte(k), n); err != nil {
			return err
		}
	}
	return nil
}

// prepared reports what prepare did.
type prepared struct {
	created    bool
	migratedTo uint64 // 0 if not migrated
	restored   bool
	fresh      bool // created although the witness recorded data (StartFresh)
	oldEpoch   uint64
	epoch      uint64
	fileGen    uint64
	generation uint64 // the generation after Open
}

// prepare initialises, migrates and checks an open file in one transaction,
// and moves to a new epoch if the witness shows the file is older than what
// was already written (see "Restore detection" in the package doc). It
// writes nothing when there is nothing to do. fellBack is checkFile's note
// that bbolt uses the older meta page; fresh is StartFresh.
func prepare(db *bolt.DB, l layout, witness uint64, fellBack string, fresh bool) (prepared, error) {
	var p prepared
	err := db.Update(func(tx *bolt.Tx) error {
		v, err := classify(tx, l)
		if err != nil {
			return err
		}
		changed := false
		if v == 0 {
			if witness > 0 && !fresh {
				return fmt.Errorf("%w: the file is an empty database, but the witness records generation %d (use StartFresh to start a new store)", ErrMissing, witness)
			}
			p.created, changed, v = true, true, l.version
			for _, name := range buckets {
				if _, err := tx.CreateBucket(name); err != nil {
					return fmt.Errorf("create bucket %q: %w", name, err)
				}
			}
			meta := tx.Bucket(bMeta)
			if err := firstErr(meta.Put(kKind, []byte(kind)), putUint(meta, kFormat, v)); err != nil {
				return err
			}
			for _, k := range sealedMeta(counted) {
				if err := putMeta(tx, k, 0); err != nil {
					return err
				}
			}
			if err := putMeta(tx, kEpoch, store.NextEpoch(0)); err != nil {
				return err
			}
		}
		for ; v < l.version; v++ {
			if int(v) > len(l.migrations) {
				return fmt.Errorf("no migration from format version %d", v)
			}
			if err := l.migrations[v-1](tx); err != nil {
				return fmt.Errorf("migrate from format version %d to %d: %w", v, v+1, err)
			}
			p.migratedTo, changed = v+1, true
		}
		meta := tx.Bucket(bMeta)
		if changed {
			if err := putUint(meta, kFormat, v); err != nil {
				return err
			}
		}
		for _, name := range buckets {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("%w: no %q bucket", ErrDamaged, name)
			}
		}
		if p.epoch, err = getMeta(tx, kEpoch); err != nil {
			return err
		}
		if p.fileGen, err = getMeta(tx, kGeneration); err != nil {
			return err
		}
		p.generation = p.fileGen
		if witness > p.fileGen {
			switch {
			case p.created:
				p.fresh, p.restored = true, true
			case fellBack != "":
				return fmt.Errorf("%w: %s, which is at generation %d, but the witness records generation %d: the last commits are lost",
					ErrDamaged, fellBack, p.fileGen, witness)
			default:
				p.restored, p.oldEpoch, p.epoch = true, p.epoch, store.NextEpoch(p.epoch)
				if err := putMeta(tx, kEpoch, p.epoch); err != nil {
					return err
				}
			}
			changed = true
			p.generation = witness + 1
			if err := putMeta(tx, kGeneration, p.generation); err != nil {
				return err
			}
		}
		if !changed {
			return errNoChange
		}
		return nil
	})
	if errors.Is(err, errNoChange) {
		err = nil
	}
	return p, err
}

// errNoChange rolls back a read-write transaction that found nothing to do.
var errNoChange = errors.New("no change")

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// putUint and getUint read and write the unsealed uint64s: the format
// version (so that every version can read it), and format 1's values.
func putUint(b *bolt.Bucket, key []byte, v uint64) error {
	if err := b.Put(key, binary.BigEndian.AppendUint64(nil, v)); err != nil {
		return fmt.Errorf("put %q: %w", key, err)
	}
	return nil
}

func getUint(b *bolt.Bucket, key []byte) (uint64, bool) {
	v := b.Get(key)
	if len(v) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(v), true
}

// readWitness returns the generation in the witness file at path, 0 if
// there is none. An unreadable witness (a power failure can leave it
// empty) counts as none; the reason is returned for logging.
func readWitness(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	g, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("witness %s: %w", path, err)
	}
	return g, nil
}

// writeWitness records generation g in the witness file at path: written
// to a temporary file and renamed over the witness, so a reader sees the
// old or the new one.
func writeWitness(path string, g uint64) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(strconv.AppendUint(nil, g, 10), '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// checkFormat1State decodes a state as format 1 stored it (the revision,
// then the engine's encoding) and checks that its two revisions and its
// key agree: the one place this package reads the engine's encoding, as
// format 1 had no checksums to check it by.
func checkFormat1State(key string, v []byte) error {
	if len(v) < 8 {
		return fmt.Errorf("%w: format 1 record %q: no revision", ErrDamaged, key)
	}
	st, err := state.DecodeState(v[8:])
	if err != nil {
		return fmt.Errorf("%w: format 1 record %q: %w", ErrDamaged, key, err)
	}
	if rev := binary.BigEndian.Uint64(v); st.Rev != rev || st.Key != key {
		return fmt.Errorf("%w: format 1 record %q: stored as %q at revision %d, indexed at %d", ErrDamaged, key, st.Key, st.Rev, rev)
	}
	return nil
}
