package boltstore

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/concordsync/concord/internal/state"
	bolt "go.etcd.io/bbolt"
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
