package boltstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"

	recsync "github.com/concordsync/concord/sync"
)

// FormatVersion is the file format version this package writes.
const FormatVersion = 1

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

	kKind       = []byte("kind")
	kFormat     = []byte("format")
	kEpoch      = []byte("epoch")
	kGeneration = []byte("generation")
)

// buckets are the buckets of the current format.
var buckets = [][]byte{bMeta, bActors, bCursors, bStates, bPending, bHeld, bDeadLetters, bLeases}

// layout is the format version a Store writes and how to reach it from the
// older ones: migrations[i] turns a file of version i+1 into version i+2.
// Tests use a layout of their own to exercise migration.
type layout struct {
	version    uint64
	migrations []func(tx *bolt.Tx) error
}

// currentLayout is the layout of [FormatVersion]. When a format 2 comes,
// its migration from 1 is added here.
func currentLayout() layout { return layout{version: FormatVersion} }

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
		return 0, fmt.Errorf("%w: no valid format version", ErrNotAStore)
	}
	if v > l.version {
		return 0, fmt.Errorf("%w: format version %d; this version of Concord reads up to %d",
			ErrNewerFormat, v, l.version)
	}
	return v, nil
}

// prepared reports what prepare did.
type prepared struct {
	created    bool
	migratedTo uint64 // 0 if not migrated
	restored   bool
	oldEpoch   uint64
	epoch      uint64
	fileGen    uint64
	generation uint64 // the generation after Open
}

// prepare initialises, migrates and checks an open file in one transaction,
// and moves to a new epoch if the witness shows the file is older than what
// was already written (see "Restore detection" in the package doc). It
// writes nothing when there is nothing to do.
func prepare(db *bolt.DB, l layout, witness uint64) (prepared, error) {
	var p prepared
	err := db.Update(func(tx *bolt.Tx) error {
		v, err := classify(tx, l)
		if err != nil {
			return err
		}
		changed := false
		if v == 0 {
			p.created, changed, v = true, true, l.version
			for _, name := range buckets {
				if _, err := tx.CreateBucket(name); err != nil {
					return fmt.Errorf("create bucket %q: %w", name, err)
				}
			}
			meta := tx.Bucket(bMeta)
			if err := firstErr(meta.Put(kKind, []byte(kind)), putUint(meta, kFormat, v),
				putUint(meta, kEpoch, recsync.NextEpoch(0)), putUint(meta, kGeneration, 0)); err != nil {
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
				return fmt.Errorf("%w: no %q bucket", ErrCorrupt, name)
			}
		}
		var ok1, ok2 bool
		p.epoch, ok1 = getUint(meta, kEpoch)
		p.fileGen, ok2 = getUint(meta, kGeneration)
		if !ok1 || !ok2 {
			return fmt.Errorf("%w: bad epoch or generation in the meta bucket", ErrCorrupt)
		}
		p.generation = p.fileGen
		if witness > p.fileGen {
			if !p.created {
				p.restored, p.oldEpoch, p.epoch = true, p.epoch, recsync.NextEpoch(p.epoch)
				if err := putUint(meta, kEpoch, p.epoch); err != nil {
					return err
				}
			}
			changed = true
			p.generation = witness + 1
			if err := putUint(meta, kGeneration, p.generation); err != nil {
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

// witnessPath is the sidecar file recording the last generation written.
func witnessPath(path string) string { return path + ".witness" }

// readWitness returns the generation in the witness of path, 0 if there is
// none. An unreadable witness (a power failure can leave it empty) counts
// as none; the reason is returned for logging.
func readWitness(path string) (uint64, error) {
	b, err := os.ReadFile(witnessPath(path))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	g, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("witness %s: %w", witnessPath(path), err)
	}
	return g, nil
}

// writeWitness records generation g for path: written to a temporary file
// and renamed over the witness, so a reader sees the old or the new one.
func writeWitness(path string, g uint64) error {
	tmp := witnessPath(path) + ".tmp"
	if err := os.WriteFile(tmp, append(strconv.AppendUint(nil, g, 10), '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, witnessPath(path))
}
