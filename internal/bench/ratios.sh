#!/usr/bin/env bash
# ratios.sh runs Concord's benchmark suite (issue 13) with -count and prints
# each figure beside its floor as a ratio of medians. The raw output is kept
# in $OUT (benchstat-compatible: `benchstat -col /impl $OUT`).
#
#   internal/bench/ratios.sh            # COUNT=5, every group
#   COUNT=10 ONLY='Merge|Peer' internal/bench/ratios.sh
#   RAW=old.txt internal/bench/ratios.sh  # only print the table of a saved run
#
# PostgreSQL figures need CONCORD_TEST_POSTGRES_DSN; the peer (automerge-go)
# needs cgo and the module; both are skipped with a note otherwise. The
# bbolt run over 10^5 records is skipped unless CONCORD_BENCH_LARGE=1.
set -euo pipefail
cd "$(dirname "$0")/../.."
COUNT=${COUNT:-5}
ONLY=${ONLY:-.}
OUT=${OUT:-$(mktemp -t concord-bench.XXXXXX)}

run() { # run PKGDIR PATTERN [go test flags...]
	local dir=$1 pat=$2
	shift 2
	if ! echo "$pat" | grep -Eq "$ONLY"; then return 0; fi
	echo "# running $pat in $dir" >&2
	(cd "$dir" && go test -run '^$' -bench "$pat" -benchmem -count "$COUNT" -timeout 60m "$@" .) >>"$OUT"
}

if [ -z "${RAW:-}" ]; then
	: >"$OUT"
	run sync '^BenchmarkMerge$'
	run sync '^BenchmarkSuiteInitialSync$' -benchtime 3x
	run sync '^BenchmarkSuiteEditCycle$' -benchtime 3x
	# One process per store: the memory rigs (kept across -count runs)
	# and the bbolt setups together outgrow a 24 GB machine.
	run sync '^BenchmarkSuiteScale$/store=memory' -benchtime 5x
	run sync '^BenchmarkSuiteScale$/store=bolt' -benchtime 5x
	run sync '^BenchmarkSuiteFootprint$' -benchtime 20x
	run sync '^BenchmarkSuiteDurableHeap$' -benchtime 5x
	run sync '^BenchmarkCycleWithDeadLetters$' -benchtime 20x
	run sync '^BenchmarkCycleWithHolds$' -benchtime 20x
	run sync '^BenchmarkPeerMerge$' -benchtime 20x
	if [ -n "${CONCORD_TEST_POSTGRES_DSN:-}" ]; then
		run sync/store/pgstore '^BenchmarkCommit1000$'
	else
		echo "# pgstore: skipped (CONCORD_TEST_POSTGRES_DSN not set)" >&2
	fi
	if [ "$(go env CGO_ENABLED)" = 1 ] && (cd internal/bench/automerge && go vet . >/dev/null 2>&1); then
		run internal/bench/automerge '^BenchmarkPeer$' -benchtime 5x
	else
		echo "# peer: skipped (no cgo or automerge-go module unavailable)" >&2
	fi
else
	OUT=$RAW
fi
echo "# raw results: $OUT" >&2

awk '
function median(key,   n, i, j, t, a) {
	n = cnt[key]
	if (n == 0) return ""
	for (i = 1; i <= n; i++) a[i] = val[key, i]
	for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j+1] = a[j]; a[j+1] = t }
	return (n % 2) ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
}
function add(key, v) { cnt[key]++; val[key, cnt[key]] = v }
function human(ns) {
	if (ns >= 1e9) return sprintf("%.2f s", ns / 1e9)
	if (ns >= 1e6) return sprintf("%.1f ms", ns / 1e6)
	if (ns >= 1e3) return sprintf("%.1f µs", ns / 1e3)
	return sprintf("%.0f ns", ns)
}
function row(what, a, b, target,   ma, mb) {
	ma = median(a " ns/op"); mb = median(b " ns/op")
	if (ma == "" || mb == "") { printf("| %s | not run | | | %s |\n", what, target); return }
	printf("| %s | %s | %s | %.2f× | %s |\n", what, human(ma), human(mb), ma / mb, target)
}
# speedup prints baseline ÷ Concord of the ns/record medians: > 1 means
# Concord is faster (the reverse of row).
function speedup(what, a, b, target,   ma, mb) {
	ma = median(a " ns/record"); mb = median(b " ns/record")
	if (ma == "" || mb == "") { printf("| %s | not run | | | %s |\n", what, target); return }
	printf("| %s | %s | %s | %.2f× | %s |\n", what, human(ma), human(mb), mb / ma, target)
}
function metric(what, key, unit, target,   m) {
	m = median(key " " unit)
	if (m == "") { printf("| %s | not run | | | %s |\n", what, target); return }
	printf("| %s | %.0f %s | | | %s |\n", what, m, unit, target)
}
/^Benchmark/ {
	name = $1; sub(/-[0-9]+$/, "", name)
	for (i = 3; i < NF; i += 2) add(name " " $(i+1), $i)
}
END {
	print "| measure | Concord | baseline | ratio | target |"
	print "| --- | --- | --- | --- | --- |"
	split("no-change one-field-change conflict", paths, " ")
	for (p = 1; p <= 3; p++)
		row("merge 20 fields × 4 systems, " paths[p] " (vs record-level LWW)", "BenchmarkMerge/path=" paths[p] "/impl=concord", "BenchmarkMerge/path=" paths[p] "/impl=lww-floor", "")
	row("initial sync 10^4 × 20 fields (vs copy floor)", "BenchmarkSuiteInitialSync/n=10000/impl=concord", "BenchmarkSuiteInitialSync/n=10000/impl=copy-floor", "≤ 3×")
	row("edit cycle, 10^4 records edited (vs copy floor)", "BenchmarkSuiteEditCycle/case=edit/n=10000/impl=concord", "BenchmarkSuiteEditCycle/case=edit/n=10000/impl=copy-floor", "≤ 3×")
	row("edit cycle, records whose every field changed before (vs copy floor)", "BenchmarkSuiteEditCycle/case=edit-aged/n=10000/impl=concord", "BenchmarkSuiteEditCycle/case=edit/n=10000/impl=copy-floor", "≤ 3×")
	row("initial sync, z in another shape (a Mapping; vs a copy floor that maps each record)", "BenchmarkSuiteInitialSync/shape=mapped/n=10000/impl=concord", "BenchmarkSuiteInitialSync/shape=mapped/n=10000/impl=copy-floor", "≤ 3×")
	row("edit cycle, z in another shape (vs a copy floor that maps each record)", "BenchmarkSuiteEditCycle/case=edit-mapped/n=10000/impl=concord", "BenchmarkSuiteEditCycle/case=edit-mapped/n=10000/impl=copy-floor", "≤ 3×")
	row("echo cycle (nothing changed) vs edit cycle", "BenchmarkSuiteEditCycle/case=echo/n=10000/impl=concord", "BenchmarkSuiteEditCycle/case=edit/n=10000/impl=concord", "≤ 0.20×")
	row("echo cycle, z in another shape, vs its edit cycle", "BenchmarkSuiteEditCycle/case=echo-mapped/n=10000/impl=concord", "BenchmarkSuiteEditCycle/case=edit-mapped/n=10000/impl=concord", "≤ 0.20×")
	row("k=1000 changes, memory store: N=10^5 vs N=10^4", "BenchmarkSuiteScale/store=memory/k=1000/n=100000", "BenchmarkSuiteScale/store=memory/k=1000/n=10000", "≈ 1×")
	row("k=1000 changes, bbolt store: N=10^5 vs N=10^4", "BenchmarkSuiteScale/store=bolt/k=1000/n=100000", "BenchmarkSuiteScale/store=bolt/k=1000/n=10000", "≈ 1×")
	row("k=1000 changes, bbolt store: N=10^6 vs N=10^4", "BenchmarkSuiteScale/store=bolt/k=1000/n=1000000", "BenchmarkSuiteScale/store=bolt/k=1000/n=10000", "≤ 1.5×")
	row("cycle over 10^4 dead letters vs none, memory", "BenchmarkCycleWithDeadLetters/store=memory/dead=10000", "BenchmarkCycleWithDeadLetters/store=memory/dead=0", "≈ 1×")
	row("cycle over 10^4 dead letters vs none, bbolt", "BenchmarkCycleWithDeadLetters/store=bolt/dead=10000", "BenchmarkCycleWithDeadLetters/store=bolt/dead=0", "≈ 1×")
	row("cycle over 10^4 held conflicts vs none, memory", "BenchmarkCycleWithHolds/store=memory/holds=10000", "BenchmarkCycleWithHolds/store=memory/holds=0", "≈ 1×")
	row("cycle over 10^4 held conflicts vs none, bbolt", "BenchmarkCycleWithHolds/store=bolt/holds=10000", "BenchmarkCycleWithHolds/store=bolt/holds=0", "≈ 1×")
	metric("engine + memory store heap between cycles, per record", "BenchmarkSuiteFootprint/n=10000/store=memory", "heap-B/record", "")
	metric("of which the audit log the memory store keeps", "BenchmarkSuiteFootprint/n=10000/store=memory", "audit-B/record", "")
	metric("one fake system heap (for scale)", "BenchmarkSuiteFootprint/n=10000/store=memory", "fake-heap-B/record", "")
	metric("engine + bbolt store heap, N=10^3", "BenchmarkSuiteDurableHeap/n=1000/store=bbolt", "heap-B", "independent of N")
	metric("engine + bbolt store heap, N=10^4", "BenchmarkSuiteDurableHeap/n=10000/store=bbolt", "heap-B", "independent of N")
	metric("of which the engine alone, N=10^3", "BenchmarkSuiteDurableHeap/n=1000/store=bbolt", "engine-heap-B", "independent of N")
	metric("of which the engine alone, N=10^4", "BenchmarkSuiteDurableHeap/n=10000/store=bbolt", "engine-heap-B", "independent of N")
	metric("encoded state per record", "BenchmarkSuiteFootprint/n=10000/store=memory", "enc-B/record", "")
	metric("encoded state per field", "BenchmarkSuiteFootprint/n=10000/store=memory", "enc-B/field", "")
	metric("encoded metadata per record (less the values)", "BenchmarkSuiteFootprint/n=10000/store=memory", "meta-B/record", "≤ 24 B/field + 64 B")
	metric("encoded metadata per field", "BenchmarkSuiteFootprint/n=10000/store=memory", "meta-B/field", "")
	row("PostgreSQL store, commit 1,000 states (vs raw pgx)", "BenchmarkCommit1000/store", "BenchmarkCommit1000/raw-pgx", "")
	row("peer: disjoint edits, 1,000 records (vs automerge merge)", "BenchmarkPeer/case=disjoint/impl=concord", "BenchmarkPeer/case=disjoint/impl=automerge", "")
	row("peer: same edits, 1,000 records (vs automerge merge)", "BenchmarkPeer/case=same/impl=concord", "BenchmarkPeer/case=same/impl=automerge", "")
	split("disjoint same", cases, " ")
	for (p = 1; p <= 2; p++) {
		speedup("peer: merge alone vs automerge merge, " cases[p] " edits, per record (ratio automerge ÷ Concord, > 1 = faster)", "BenchmarkPeerMerge/case=" cases[p] "/impl=merge", "BenchmarkPeer/case=" cases[p] "/impl=automerge", "≥ 100×")
		speedup("peer: full round vs automerge merge, " cases[p] " edits, per record (ratio automerge ÷ Concord, > 1 = faster)", "BenchmarkPeerMerge/case=" cases[p] "/impl=round", "BenchmarkPeer/case=" cases[p] "/impl=automerge", "≥ 10×")
	}
}' "$OUT"
