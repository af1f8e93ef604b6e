package boltstore

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/internal/state"
)

const (
	// killChildEnv names the store file TestKillChild writes to; set only
	// in the child processes TestKill starts.
	killChildEnv = "CONCORD_BOLTSTORE_KILL_CHILD"
	// killRoundsEnv raises the number of kills for a longer run.
	killRoundsEnv = "CONCORD_KILL_ROUNDS"
	killKeys      = 50
	// seqSystem is the cursor that holds the number of the last commit.
	seqSystem concord.SystemID = "seq"
)

// killState is the state commit i leaves for its key: field n is i, and
// the state is pending when i is even (so the pending index moves too).
func killState(key string, i int, rev uint64) *state.Record {
	st := state.Sample(key, i%2 == 0, false)
	st.Fields["n"] = int64(i)
	st.Rev = rev
	return st
}

// TestKillChild is the child process of TestKill, not a test of its own:
// it opens the store named by CONCORD_BOLTSTORE_KILL_CHILD and commits the
// sequence 0, 1, 2, ... (resuming after the last committed one) until it is
// killed. Commit i sets field n of key k(i mod 50) to i, the cursor "seq"
// to i, and adds a dead letter when i is a multiple of 10.
func TestKillChild(t *testing.T) {
	path := os.Getenv(killChildEnv)
	if path == "" {
		t.Skip("runs only as the child process of TestKill")
	}
	s, err := Open(path, WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cur, err := s.Cursor(ctx, seqSystem)
	if err != nil {
		t.Fatal(err)
	}
	next := 0
	if cur != "" {
		last, err := strconv.Atoi(string(cur))
		if err != nil {
			t.Fatal(err)
		}
		next = last + 1
	}
	fmt.Println("ready")
	deadline := time.Now().Add(30 * time.Second) // an orphaned child stops by itself
	for i := next; time.Now().Before(deadline); i++ {
		key := fmt.Sprintf("k%02d", i%killKeys)
		m, err := state.Load(ctx, s, []string{key})
		if err != nil {
			t.Fatal(err)
		}
		var rev uint64
		if old := m[key]; old != nil {
			rev = old.Rev
		}
		c := &state.Commit{
			Cursors: map[concord.SystemID]connector.Cursor{seqSystem: connector.Cursor(strconv.Itoa(i))},
			States:  []*state.Record{killState(key, i, rev)},
		}
		if i%10 == 0 {
			c.DeadLetters = []state.DeadLetter{{System: "a", Key: key, Reason: strconv.Itoa(i)}}
		}
		if err := c.Apply(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
}

// TestKill kills a child process that commits to a store at random moments
// with SIGKILL, and checks after each kill that the store opens and holds
// exactly a prefix of the child's commit sequence: every commit whole or
// absent, none after a gap, never fewer than after the previous kill; and
// that it kept its epoch (a kill is not a restore).
func TestKill(t *testing.T) {
	if os.Getenv(killChildEnv) != "" {
		t.Skip("in the child process")
	}
	rounds := 50
	if testing.Short() {
		rounds = 10
	}
	if v := os.Getenv(killRoundsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("%s=%q: want a positive number", killRoundsEnv, v)
		}
		rounds = n
	}
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("%d rounds, seed %d", rounds, seed)

	path := filepath.Join(t.TempDir(), "concord.db")
	var epoch uint64
	last := -1
	for round := range rounds {
		killChild(t, path, time.Duration(rng.IntN(40))*time.Millisecond)
		s, err := Open(path, WithLogger(quiet))
		if err != nil {
			t.Fatalf("round %d: Open after kill: %v", round, err)
		}
		seq := checkPrefix(t, s)
		if s.Restored() {
			t.Fatalf("round %d: a kill was taken for a restore", round)
		}
		if e := mustEpoch(t, s); round > 0 && e != epoch {
			t.Fatalf("round %d: epoch changed from %d to %d by a kill", round, epoch, e)
		} else {
			epoch = e
		}
		if seq < last {
			t.Fatalf("round %d: the store went back from commit %d to %d", round, last, seq)
		}
		last = seq
		closeStore(t, s)
	}
	if last < rounds {
		t.Fatalf("only %d commits in %d rounds: the children barely ran", last+1, rounds)
	}
	t.Logf("%d commits survived %d kills", last+1, rounds)
}

// killChild starts TestKillChild on path, lets it run for about d after it
// opened the store, and kills it with SIGKILL.
func killChild(t *testing.T, path string, d time.Duration) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), killChildEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if line != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child did not start: %q, %v; stderr:\n%s", line, err, stderr.String())
	}
	time.Sleep(d)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var exit *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child ended by %v, not by the kill; stderr:\n%s", err, stderr.String())
	}
}

// checkPrefix checks that s holds exactly commits 0..seq of the child's
// sequence, and returns seq (-1 if none).
func checkPrefix(t *testing.T, s *Store) int {
	t.Helper()
	cur, err := s.Cursor(ctx, seqSystem)
	if err != nil {
		t.Fatal(err)
	}
	seq := -1
	if cur != "" {
		if seq, err = strconv.Atoi(string(cur)); err != nil {
			t.Fatalf("cursor %q: %v", cur, err)
		}
	}
	keys := make([]string, killKeys)
	for j := range keys {
		keys[j] = fmt.Sprintf("k%02d", j)
	}
	got, err := state.Load(ctx, s, keys)
	if err != nil {
		t.Fatalf("Load after kill at commit %d: %v", seq, err)
	}
	want := map[string]*state.Record{}
	wantPending := []string{}
	for j, key := range keys {
		if seq < j {
			continue
		}
		i := seq - (seq-j)%killKeys // the last commit to key
		want[key] = killState(key, i, uint64((i-j)/killKeys+1))
		if i%2 == 0 {
			wantPending = append(wantPending, key)
		}
	}
	if diff := cmp.Diff(want, got, cmpState); diff != "" {
		t.Fatalf("states after kill at commit %d (-want +got):\n%s", seq, diff)
	}
	pending, err := s.Pending(ctx, killKeys+1)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantPending, pending); diff != "" {
		t.Fatalf("pending index after kill at commit %d (-want +got):\n%s", seq, diff)
	}
	dead, err := state.LoadDeadLetters(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	var reasons, wantReasons []string
	for _, d := range dead {
		reasons = append(reasons, d.Reason)
	}
	for i := 0; i <= seq; i += 10 {
		wantReasons = append(wantReasons, strconv.Itoa(i))
	}
	if !slices.Equal(reasons, wantReasons) {
		t.Fatalf("dead letters after kill at commit %d: %v; want %v", seq, reasons, wantReasons)
	}
	return seq
}
