package boltstore

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/sync/store"
	"github.com/concordsync/concord/sync/store/storetest"
)

// damageChildEnv names a file listing store files, one a line, that
// TestDamageChild opens and reads; set only in the child processes that
// openDamaged starts.
const damageChildEnv = "CONCORD_BOLTSTORE_DAMAGE_CHILD"

// The content of the damage fixture, known to parent and child alike.
const fixtureKeys = 80

var (
	fixtureActors  = []string{"system/a", "system/b", "engine"}
	fixtureSystems = []concord.SystemID{"a", "b"}
)

func fixtureKey(i int) string { return fmt.Sprintf("k%02d", i) }

var fixtureValues = []string{"scan/a", "scan/b", "stats/name", "stats/phone", "audit/delivered"}

// writeFixture writes a store with a bit of everything at path, over
// several commits (so that the file has free pages and more than one
// level of pages), closes it and returns what fingerprint gives for it.
func writeFixture(t testing.TB, path string) string {
	t.Helper()
	clock := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	s, err := Open(path, WithLogger(quiet), WithClock(func() time.Time { return clock }))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, a := range fixtureActors {
		if _, err := s.Actor(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.NewEpoch(ctx); err != nil {
		t.Fatal(err)
	}
	lease, err := s.AcquireLease(ctx, "default", "host-1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	states := make([]*state.Record, fixtureKeys)
	for round := range 6 {
		c := &state.Commit{
			Lease:   &lease,
			Cursors: map[concord.SystemID]connector.Cursor{"a": connector.Cursor(fmt.Sprint("a-", round)), "b": connector.Cursor(fmt.Sprint("b-", round))},
		}
		for i := range fixtureKeys {
			if (i+round)%3 == 0 && round > 0 {
				continue
			}
			st := state.Sample(fixtureKey(i), (i+round)%4 == 0, i%9 == 0)
			if states[i] != nil {
				st.Rev = states[i].Rev
			}
			st.Fields["round"] = int64(round)
			st.Fields["note"] = strings.Repeat("x", 20+i%50)
			if i == 0 {
				st.Fields["bird"] = "CANARY"
			}
			states[i] = st
			c.States = append(c.States, st)
		}
		c.DeadLetters = []state.DeadLetter{{System: "a", Key: fmt.Sprint("bad-", round), Inbound: true, Reason: "no key", Class: "invalid", When: clock}}
		if round == 3 {
			c.RemoveDeadLetters = []uint64{1, 2}
		}
		mustCommit(t, s, c)
		// The engine's values and audit entries, some values deleted or
		// emptied again.
		values := map[string][]byte{}
		for i, name := range fixtureValues {
			switch (i + round) % 4 {
			case 0:
				values[name] = nil
			case 1:
				values[name] = []byte{}
			default:
				values[name] = []byte(strings.Repeat(fmt.Sprint(name, round), 1+i))
			}
		}
		if err := s.Commit(ctx, &store.Commit{Values: values, Audit: storetest.Entries(uint64(round*7+1), 7)}); err != nil {
			t.Fatal(err)
		}
	}
	fp, err := fingerprint(s)
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

// fingerprint reads everything the fixture holds through the Store's API
// and returns a hash of it in a canonical form.
func fingerprint(s *Store) (string, error) {
	h := sha256.New()
	put := func(b []byte) { h.Write(binary.AppendUvarint(nil, uint64(len(b)))); h.Write(b) }
	e, err := s.Epoch(ctx)
	if err != nil {
		return "", err
	}
	put(binary.AppendUvarint(nil, e))
	put([]byte(strconv.FormatBool(s.Restored())))
	for _, name := range fixtureActors {
		a, err := s.Actor(ctx, name)
		if err != nil {
			return "", err
		}
		put(binary.AppendUvarint(nil, uint64(a)))
	}
	for _, sys := range fixtureSystems {
		c, err := s.Cursor(ctx, sys)
		if err != nil {
			return "", err
		}
		put([]byte(c))
	}
	keys := make([]string, fixtureKeys)
	for i := range keys {
		keys[i] = fixtureKey(i)
	}
	states, err := state.Load(ctx, s, keys)
	if err != nil {
		return "", err
	}
	put(binary.AppendUvarint(nil, uint64(len(states))))
	for _, k := range keys {
		if st := states[k]; st != nil {
			b, err := state.EncodeState(nil, st)
			if err != nil {
				return "", err
			}
			put(b)
		}
	}
	for _, list := range []func(context.Context) ([]string, error){
		func(ctx context.Context) ([]string, error) { return s.Pending(ctx, 1000) }, s.Held,
	} {
		ks, err := list(ctx)
		if err != nil {
			return "", err
		}
		put([]byte(strings.Join(ks, "\x00")))
	}
	dead, err := state.LoadDeadLetters(ctx, s)
	if err != nil {
		return "", err
	}
	for _, d := range dead {
		b, err := state.EncodeDeadLetter(binary.AppendUvarint(nil, d.ID), d)
		if err != nil {
			return "", err
		}
		put(b)
	}
	for _, name := range fixtureValues {
		v, err := s.Value(ctx, name)
		if err != nil {
			return "", err
		}
		put([]byte(strconv.FormatBool(v == nil)))
		put(v)
	}
	head, err := s.AuditHead(ctx)
	if err != nil {
		return "", err
	}
	put(binary.AppendUvarint(nil, head.Seq))
	put(head.Data)
	for after := uint64(0); ; {
		es, err := s.AuditEntries(ctx, after, 10)
		if err != nil {
			return "", err
		}
		if len(es) == 0 {
			break
		}
		for _, e := range es {
			put(binary.AppendUvarint(nil, e.Seq))
			put(e.Data)
		}
		after = es[len(es)-1].Seq
	}
	for after := ""; ; {
		ks, err := s.Keys(ctx, after, 16)
		if err != nil {
			return "", err
		}
		if len(ks) == 0 {
			break
		}
		put([]byte(strings.Join(ks, "\x00")))
		after = ks[len(ks)-1]
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// TestDamageChild is the child process of openDamaged, not a test of its
// own: it opens each store file listed in the file named by
// CONCORD_BOLTSTORE_DAMAGE_CHILD, reads everything, and prints one line
// per file, "result ok <fingerprint>" or "result error <sentinel> <error>",
// before it goes on to the next. A file that kills it (a panic, a fault,
// a runtime throw) is the one after the last line printed.
func TestDamageChild(t *testing.T) {
	list := os.Getenv(damageChildEnv)
	if list == "" {
		t.Skip("runs only as the child process of the damage tests")
	}
	b, err := os.ReadFile(list)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range strings.Fields(string(b)) {
		switch path {
		case "!panic": // for TestDamageHarnessReportsOutcomes
			panic("a deliberate panic")
		case "!fault":
			readPastEnd(t)
		}
		s, err := Open(path, WithLogger(quiet), WithTimeout(time.Second))
		fp := ""
		if err == nil {
			fp, err = fingerprint(s)
			if cerr := s.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Printf("result error %s %q\n", sentinel(err), err.Error())
			continue
		}
		fmt.Printf("result ok %s\n", fp)
	}
}

// sentinel names the package's sentinel that err wraps.
func sentinel(err error) string {
	for _, s := range []struct {
		name string
		err  error
	}{{"ErrDamaged", ErrDamaged}, {"ErrNotAStore", ErrNotAStore}, {"ErrMissing", ErrMissing},
		{"ErrNewerFormat", ErrNewerFormat}, {"ErrLocked", ErrLocked}} {
		if errors.Is(err, s.err) {
			return s.name
		}
	}
	return "other"
}

// outcome is what became of one damaged file.
type outcome struct {
	kind   string // "ok", "error", "panic", "crash" or "hang"
	detail string // the fingerprint, the sentinel and error, or the child's stderr
}

// openDamaged opens and reads every file in child processes and returns
// one outcome per file. A child that dies is replaced by a new one for the
// files after the one that killed it.
func openDamaged(t testing.TB, dir string, files []string) []outcome {
	t.Helper()
	out := make([]outcome, 0, len(files))
	for len(out) < len(files) {
		rest := files[len(out):]
		list := filepath.Join(dir, fmt.Sprintf("list-%d", len(out)))
		if err := os.WriteFile(list, []byte(strings.Join(rest, "\n")), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestDamageChild$", "-test.count=1", "-test.v=false")
		cmd.Env = append(os.Environ(), damageChildEnv+"="+list, "GOTRACEBACK=single")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		runErr := cmd.Run()
		hung := errors.Is(ctx.Err(), context.DeadlineExceeded)
		cancel()
		before := len(out)
		sc := bufio.NewScanner(&stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line, ok := strings.CutPrefix(sc.Text(), "result ")
			if !ok {
				continue
			}
			kind, detail, _ := strings.Cut(line, " ")
			out = append(out, outcome{kind: kind, detail: detail})
		}
		if len(out) == len(files) {
			break
		}
		// The child died on file rest[len(out)-before].
		msg := stderr.String() + stdout.String()
		kind := "crash"
		switch {
		case hung:
			kind = "hang"
		case strings.Contains(msg, "fatal error:") || strings.Contains(msg, "unexpected signal") || strings.Contains(msg, "SIGBUS"):
			kind = "crash"
		case strings.Contains(msg, "panic:"):
			kind = "panic"
		}
		if len(out) == before && runErr == nil {
			t.Fatalf("the child printed nothing and exited cleanly; output:\n%s", msg)
		}
		if len(msg) > 2000 {
			msg = msg[:2000]
		}
		out = append(out, outcome{kind: kind, detail: fmt.Sprintf("%v: %s", runErr, msg)})
	}
	return out
}

// damage is one way to damage a store file: cut it to cut bytes (if
// cut >= 0), then XOR bytes at offsets.
type damage struct {
	cut   int64
	flips []flip
}

type flip struct {
	off  int64
	mask byte
}

func (d damage) String() string {
	var b strings.Builder
	if d.cut >= 0 {
		fmt.Fprintf(&b, "cut to %d bytes", d.cut)
	}
	for _, f := range d.flips {
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "byte %d ^= %#02x", f.off, f.mask)
	}
	return b.String()
}

// apply writes the damaged copy of pristine to path, with the witness of
// pristine beside it (as a restore of nothing but the database would
// leave it).
func (d damage) apply(t testing.TB, pristine []byte, witness []byte, path string) {
	t.Helper()
	b := bytes.Clone(pristine)
	if d.cut >= 0 && d.cut < int64(len(b)) {
		b = b[:d.cut]
	}
	for _, f := range d.flips {
		if f.off < int64(len(b)) {
			b[f.off] ^= f.mask
		}
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(witnessPath(path), witness, 0o600); err != nil {
		t.Fatal(err)
	}
}

// tally counts outcomes against the fixture's fingerprint.
type tally struct {
	identical, changed, panics, crashes, hangs int
	refused                                    map[string]int // by sentinel
	failures                                   []string
}

func (ty *tally) add(d damage, o outcome, want string) {
	switch o.kind {
	case "ok":
		if o.detail == want {
			ty.identical++
			return
		}
		ty.changed++
	case "error":
		name, _, _ := strings.Cut(o.detail, " ")
		ty.refused[name]++
		return
	case "panic":
		ty.panics++
	case "hang":
		ty.hangs++
	default:
		ty.crashes++
	}
	ty.failures = append(ty.failures, fmt.Sprintf("%s: %s %.600s", d, o.kind, o.detail))
}

func (ty *tally) String() string {
	return fmt.Sprintf("identical %d, refused %v, silently changed %d, panics %d, crashes %d, hangs %d",
		ty.identical, ty.refused, ty.changed, ty.panics, ty.crashes, ty.hangs)
}

// TestDamagedFilesNeverPanicCrashOrChangeData is the sweep of the issue:
// 150 copies of a store file cut at random lengths and 150 with 1 to 4
// random bytes changed, each opened and read whole in a child process.
// Every one must be refused with an error or read back exactly as written:
// no panic, no crash, no hang, no silently changed data.
func TestDamagedFilesNeverPanicCrashOrChangeData(t *testing.T) {
	if os.Getenv(damageChildEnv) != "" {
		t.Skip("in the child process")
	}
	dir := t.TempDir()
	fixture := filepath.Join(dir, "pristine.db")
	want := writeFixture(t, fixture)
	pristine, witness := readFile(t, fixture), readFile(t, witnessPath(fixture))
	const seed = 8
	rng := rand.New(rand.NewPCG(seed, 10))
	var damages []damage
	for range 150 {
		damages = append(damages, damage{cut: rng.Int64N(int64(len(pristine)))})
	}
	for range 150 {
		d := damage{cut: -1}
		for range 1 + rng.IntN(4) {
			d.flips = append(d.flips, flip{off: rng.Int64N(int64(len(pristine))), mask: byte(1 + rng.IntN(255))})
		}
		damages = append(damages, d)
	}
	files := make([]string, len(damages))
	for i, d := range damages {
		files[i] = filepath.Join(dir, fmt.Sprintf("damaged-%03d.db", i))
		d.apply(t, pristine, witness, files[i])
	}
	start := time.Now()
	outs := openDamaged(t, dir, files)
	cut, flipped := tally{refused: map[string]int{}}, tally{refused: map[string]int{}}
	for i, o := range outs {
		ty := &cut
		if i >= 150 {
			ty = &flipped
		}
		ty.add(damages[i], o, want)
	}
	t.Logf("file of %d bytes, seed %d, %v in child processes", len(pristine), seed, time.Since(start).Round(time.Millisecond))
	t.Logf("150 truncated: %v", &cut)
	t.Logf("150 with 1-4 changed bytes: %v", &flipped)
	for _, f := range append(cut.failures, flipped.failures...) {
		t.Errorf("%s", f)
	}
}

// The parent side of the damage tests needs to be sure that the child
// harness sees what it must: a clean file read back identical, a panic, and
// a fatal fault, each reported as such.
func TestDamageHarnessReportsOutcomes(t *testing.T) {
	if os.Getenv(damageChildEnv) != "" {
		t.Skip("in the child process")
	}
	dir := t.TempDir()
	fixture := filepath.Join(dir, "pristine.db")
	want := writeFixture(t, fixture)
	pristine, witness := readFile(t, fixture), readFile(t, witnessPath(fixture))
	clean := filepath.Join(dir, "clean.db")
	damage{cut: -1}.apply(t, pristine, witness, clean)
	// Older copies of the record may lie in free pages: change them all.
	var flips []flip
	for off := 0; ; {
		i := bytes.Index(pristine[off:], []byte("CANARY"))
		if i < 0 {
			break
		}
		flips = append(flips, flip{off: int64(off + i), mask: 'C' ^ 'B'})
		off += i + 1
	}
	banary := filepath.Join(dir, "banary.db")
	damage{cut: -1, flips: flips}.apply(t, pristine, witness, banary)
	outs := openDamaged(t, dir, []string{clean, banary, "!panic", "!fault", clean})
	if len(outs) != 5 || outs[0] != (outcome{"ok", want}) || outs[4] != outs[0] {
		t.Fatalf("clean file: %+v; want ok %s", outs, want)
	}
	if outs[1].kind != "error" || !strings.HasPrefix(outs[1].detail, "ErrDamaged") || !strings.Contains(outs[1].detail, `record \"k00\"`) {
		t.Fatalf("CANARY changed to BANARY: %+v; want ErrDamaged naming record k00", outs[1])
	}
	if outs[2].kind != "panic" || !strings.Contains(outs[2].detail, "a deliberate panic") {
		t.Fatalf("a panicking child: %+v; want a panic", outs[2])
	}
	if outs[3].kind != "crash" || !strings.Contains(outs[3].detail, "SIGBUS") {
		t.Fatalf("a child killed by SIGBUS: %.300v; want a crash", outs[3])
	}
}

// readPastEnd maps two pages of a one-byte file and reads the second,
// beyond the end of the file: SIGBUS, as bbolt did with truncated files.
func readPastEnd(t testing.TB) byte {
	f, err := os.CreateTemp(t.TempDir(), "short")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	ps := os.Getpagesize()
	m, err := syscall.Mmap(int(f.Fd()), 0, 2*ps, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(m)
	return m[ps+10]
}

// A memory fault inside guard (what bbolt does on a file shorter than its
// pages) is an error wrapping ErrDamaged, not the death of the process;
// so is a panic.
func TestGuardTurnsFaultsAndPanicsIntoErrors(t *testing.T) {
	err := guard("load", func() error { readPastEnd(t); return nil })
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "load") {
		t.Fatalf("guard of a read past the end of a mapped file = %v; want ErrDamaged", err)
	}
	err = guard("open", func() error { panic("assertion failed: Page expected to be: 7, but self identifies as 9") })
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "self identifies") {
		t.Fatalf("guard of a panic = %v; want ErrDamaged with the panic", err)
	}
	if err := guard("x", func() error { return ErrClosed }); err != ErrClosed {
		t.Fatalf("guard passed back %v; want ErrClosed as is", err)
	}
}

// FuzzOpenDamagedStore opens a store file written by the store and then
// damaged as the fuzzer chooses: cut to cut bytes (when 0 <= cut < size),
// then bytes changed by edits (5 bytes each: a big-endian offset, taken
// modulo the size, and a mask to XOR there). The file is opened and read
// whole in a child process, so that a fatal fault is reported as a failure
// instead of ending the run; it must be refused with an error or read back
// exactly as written.
//
// The fuzzer sees no coverage from the child, so it explores by mutation
// alone; the seeds aim at each structure in the file.
func FuzzOpenDamagedStore(f *testing.F) {
	if os.Getenv(damageChildEnv) != "" {
		f.Skip("in the child process")
	}
	dir := f.TempDir()
	fixture := filepath.Join(dir, "pristine.db")
	want := writeFixture(f, fixture)
	pristine, witness := readFile(f, fixture), readFile(f, witnessPath(fixture))
	size := int64(len(pristine))
	edit := func(off int64, mask byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(off)), mask)
	}
	ps := int64(os.Getpagesize())
	f.Add(int64(-1), []byte(nil)) // as written
	f.Add(int64(0), []byte(nil))  // empty, the witness says it had data
	f.Add(size/2, []byte(nil))    // cut in the middle
	f.Add(3*ps+100, []byte(nil))  // cut inside the first data pages
	f.Add(int64(-1), edit(int64(bytes.Index(pristine, []byte("CANARY"))), 'C'^'B'))
	f.Add(int64(-1), edit(16+8, 0x01))                                    // meta page 0: page size
	f.Add(int64(-1), edit(ps+16+40, 0x80))                                // meta page 1: page count
	f.Add(int64(-1), edit(2*ps+10, 0xff))                                 // page 2's element count
	f.Add(int64(-1), append(edit(3*ps+20, 0x10), edit(4*ps+17, 0x04)...)) // two element offsets
	f.Fuzz(func(t *testing.T, cut int64, edits []byte) {
		d := damage{cut: -1}
		if cut >= 0 && cut < size {
			d.cut = cut
		}
		for i := 0; i+5 <= len(edits) && len(d.flips) < 16; i += 5 {
			if m := edits[i+4]; m != 0 {
				d.flips = append(d.flips, flip{off: int64(binary.BigEndian.Uint32(edits[i:])) % size, mask: m})
			}
		}
		tdir := t.TempDir()
		path := filepath.Join(tdir, "damaged.db")
		d.apply(t, pristine, witness, path)
		o := openDamaged(t, tdir, []string{path})[0]
		switch {
		case o.kind == "error":
		case o.kind == "ok" && o.detail == want:
		case o.kind == "ok":
			t.Fatalf("%s: opened with changed data and no error", d)
		default:
			t.Fatalf("%s: %s: %s", d, o.kind, o.detail)
		}
	})
}
