// Package automerge compares Concord with a peer, automerge-go (CRDT
// documents over the Rust core, through cgo), on the same two-system
// edits. It is a separate module so that the library never depends on
// automerge-go; its benchmarks are the whole of it:
//
//	cd internal/bench/automerge && go test -run '^$' -bench Peer -count 6 | benchstat -col /impl -
//
// Without cgo the build tag in peer_bench_test.go leaves nothing to build
// and the benchmarks are not there.
package automerge
