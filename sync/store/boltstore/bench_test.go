package boltstore

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/sync/store"
)

// BenchmarkCommit1000 compares a Commit of 1,000 states with the floor: one
// bbolt transaction putting the same encoded bytes (both fsynced). The
// difference is encoding, revision checks, the pending and held indexes,
// the generation and the witness file; EncodeAndRawPut puts encoding into
// the floor, leaving the store's own overhead. It logs the ratios.
func BenchmarkCommit1000(b *testing.B) {
	const n = 1000
	states := make([]*state.Record, n)
	enc := make([][]byte, n)
	for i := range states {
		states[i] = state.Sample(fmt.Sprintf("k%04d", i), i%3 == 0, i%7 == 0)
		ss, err := state.Encode(states[i])
		if err != nil {
			b.Fatal(err)
		}
		enc[i] = ss.Data
	}
	var commitNs, rawNs float64
	b.Run("Commit", func(b *testing.B) {
		for _, st := range states {
			st.Rev = 0 // a fresh store per run
		}
		s := open(b, filepath.Join(b.TempDir(), "concord.db"))
		mustCommit(b, s, &state.Commit{States: states}) // as an engine, update existing states
		b.ReportAllocs()
		for b.Loop() {
			mustCommit(b, s, &state.Commit{States: states})
		}
		commitNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(commitNs/n, "ns/state")
	})
	// raw puts the encoded states in one transaction, encoding them in
	// the loop too if encode.
	raw := func(ns *float64, encode bool) func(b *testing.B) {
		return func(b *testing.B) {
			db, err := bolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			put := func() {
				err := db.Update(func(tx *bolt.Tx) error {
					bk, err := tx.CreateBucketIfNotExists(bStates)
					if err != nil {
						return err
					}
					for i, st := range states {
						v := enc[i]
						if encode {
							ss, err := state.Encode(st)
							if err != nil {
								return err
							}
							v = ss.Data
						}
						if err := bk.Put([]byte(st.Key), v); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			put()
			b.ReportAllocs()
			for b.Loop() {
				put()
			}
			*ns = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(*ns/n, "ns/state")
		}
	}
	var encNs float64
	b.Run("RawPut", raw(&rawNs, false))
	b.Run("EncodeAndRawPut", raw(&encNs, true))
	if rawNs > 0 && encNs > 0 {
		b.Logf("Commit / raw Put = %.2f; Commit / (encode + raw Put) = %.2f", commitNs/rawNs, commitNs/encNs)
	}
}

// BenchmarkAuditEntries reads a page of 100 entries from the middle of
// audit logs of 10^3 and 10^5 entries: a cursor seek by Seq, so the cost
// per page does not grow with the log (compare the two with benchstat).
func BenchmarkAuditEntries(b *testing.B) {
	data := bytes.Repeat([]byte("audit entry "), 16) // about 200 bytes, as a small entry
	for _, size := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("log=%d", size), func(b *testing.B) {
			s := open(b, filepath.Join(b.TempDir(), "concord.db"))
			const batch = 5000
			for seq := 1; seq <= size; seq += batch {
				es := make([]store.AuditEntry, min(batch, size-seq+1))
				for i := range es {
					es[i] = store.AuditEntry{Seq: uint64(seq + i), Data: data}
				}
				if err := s.Commit(ctx, &store.Commit{Audit: es}); err != nil {
					b.Fatal(err)
				}
			}
			after := uint64(size / 2)
			b.ReportAllocs()
			for b.Loop() {
				es, err := s.AuditEntries(ctx, after, 100)
				if err != nil || len(es) != 100 || es[0].Seq != after+1 {
					b.Fatalf("AuditEntries(%d, 100) = %d entries, %v", after, len(es), err)
				}
			}
		})
	}
}
