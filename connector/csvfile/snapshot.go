package csvfile

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
)

// snapshot is what the connector last saw of the file, kept in a file
// beside it: the hash of each row by key, and a change sequence that
// cursors point into.
type snapshot struct {
	// Epoch names this snapshot's sequence; a cursor from another epoch
	// (the snapshot was deleted and rebuilt) reads from the beginning.
	Epoch string `json:"epoch"`
	// Seq is the last sequence number given out.
	Seq uint64 `json:"seq"`
	// Rows holds the live rows by key.
	Rows map[string]snapRow `json:"rows"`
	// Deleted holds the sequence number at which each deleted key went.
	Deleted map[string]uint64 `json:"deleted"`
	// Malformed holds the hashes of the malformed rows' texts already
	// reported, so that each is reported once.
	Malformed map[string]bool `json:"malformed"`
}

type snapRow struct {
	Hash string `json:"hash"`
	Seq  uint64 `json:"seq"`
}

// snapshotFile is the snapshot as stored, with a checksum of its body.
type snapshotFile struct {
	Version  int             `json:"version"`
	CRC32C   uint32          `json:"crc32c"`
	Snapshot json.RawMessage `json:"snapshot"`
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func newSnapshot() (*snapshot, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	return &snapshot{Epoch: hex.EncodeToString(b[:]), Rows: map[string]snapRow{},
		Deleted: map[string]uint64{}, Malformed: map[string]bool{}}, nil
}

// loadSnapshot reads the snapshot at path; a missing file is a new, empty
// snapshot, and a damaged one is an error wrapping ErrDamagedSnapshot.
func loadSnapshot(path string) (*snapshot, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return newSnapshot()
	}
	if err != nil {
		return nil, err
	}
	damaged := func(why string) error {
		return fmt.Errorf("snapshot %s: %w: %s (delete it to rebuild: every row is then read again, and rows deleted since the last read are not reported as deleted)", path, ErrDamagedSnapshot, why)
	}
	var sf snapshotFile
	if err := json.Unmarshal(data, &sf); err != nil {
		return nil, damaged(err.Error())
	}
	if sf.Version != 1 {
		return nil, damaged(fmt.Sprintf("version %d; want 1", sf.Version))
	}
	if got := crc32.Checksum(sf.Snapshot, castagnoli); got != sf.CRC32C {
		return nil, damaged(fmt.Sprintf("checksum %08x; want %08x", got, sf.CRC32C))
	}
	s := &snapshot{}
	if err := json.Unmarshal(sf.Snapshot, s); err != nil {
		return nil, damaged(err.Error())
	}
	if s.Epoch == "" || s.Rows == nil || s.Deleted == nil {
		return nil, damaged("no epoch or row maps")
	}
	if s.Malformed == nil {
		s.Malformed = map[string]bool{}
	}
	for k, r := range s.Rows {
		if r.Seq > s.Seq {
			return nil, damaged(fmt.Sprintf("row %q has sequence %d past the last, %d", k, r.Seq, s.Seq))
		}
	}
	for k, seq := range s.Deleted {
		if seq > s.Seq {
			return nil, damaged(fmt.Sprintf("deleted row %q has sequence %d past the last, %d", k, seq, s.Seq))
		}
	}
	return s, nil
}

// save writes the snapshot atomically beside the file.
func (s *snapshot) save(path string) error {
	body, err := json.Marshal(s)
	if err != nil {
		return err
	}
	data, err := json.Marshal(snapshotFile{Version: 1, CRC32C: crc32.Checksum(body, castagnoli), Snapshot: body})
	if err != nil {
		return err
	}
	return writeAtomic(path, data, 0o600, nil)
}
