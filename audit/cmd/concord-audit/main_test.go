package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/concordsync/concord/audit"
)

// cli runs the command and returns its exit status, stdout and stderr.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// writeLog writes a chained log of n entries and returns its lines.
func writeLog(t *testing.T, name string, n int) []string {
	t.Helper()
	var buf bytes.Buffer
	sink := audit.ChainedJSONLines(&buf, audit.Head{})
	for i := range n {
		ev := audit.Event{Time: time.Unix(int64(i), 0).UTC(), Kind: audit.WriteSucceeded, System: "crm", Key: fmt.Sprint("cust-", i)}
		require.NoError(t, sink.Emit(context.Background(), []audit.Event{ev}))
	}
	require.NoError(t, os.WriteFile(name, buf.Bytes(), 0o600))
	return strings.SplitAfter(buf.String(), "\n")[:n]
}

func TestKeygenCheckpointVerify(t *testing.T) {
	now = func() time.Time { return time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC) }
	t.Cleanup(func() { now = time.Now })
	dir := t.TempDir()
	at := func(name string) string { return filepath.Join(dir, name) }

	code, out, errOut := cli(t, "keygen", "-out", at("key"))
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "key id")
	info, err := os.Stat(at("key"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "the private key is not readable by others")
	code, _, errOut = cli(t, "keygen", "-out", at("key"))
	require.Equal(t, 2, code, "an existing key is not overwritten")
	require.Contains(t, errOut, "exists")

	lines := writeLog(t, at("audit.jsonl"), 100)

	code, cpText, errOut := cli(t, "checkpoint", "-log", at("audit.jsonl"), "-key", at("key"), "-name", "crm-erp")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, cpText, "log crm-erp\nseq 100\n")
	require.Contains(t, cpText, "time 2025-03-14T09:00:00Z\n")
	require.NoError(t, os.WriteFile(at("cp.txt"), []byte(cpText), 0o644))

	// Verified offline with the public key only.
	code, out, errOut = cli(t, "verify", "-log", at("audit.jsonl"), "-checkpoint", at("cp.txt"), "-pub", at("key.pub"), "-name", "crm-erp")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "ok: 100 entries (1 to 100)")
	require.Contains(t, out, "1 checkpoints matched")
	code, _, errOut = cli(t, "verify", "-log", at("audit.jsonl"))
	require.Equal(t, 0, code, errOut)

	// A byte flipped in entry 42.
	flipped := strings.Join(lines[:41], "") + strings.Replace(lines[41], "cust-41", "cust-49", 1) + strings.Join(lines[42:], "")
	require.NoError(t, os.WriteFile(at("flipped.jsonl"), []byte(flipped), 0o600))
	code, _, errOut = cli(t, "verify", "-log", at("flipped.jsonl"))
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "entry 42 (line 42): modified: hash mismatch")
	require.NotContains(t, errOut, "audit: ")

	// The tail cut off: only the checkpoint tells.
	require.NoError(t, os.WriteFile(at("short.jsonl"), []byte(strings.Join(lines[:90], "")), 0o600))
	code, _, _ = cli(t, "verify", "-log", at("short.jsonl"))
	require.Equal(t, 0, code)
	code, _, errOut = cli(t, "verify", "-log", at("short.jsonl"), "-checkpoint", at("cp.txt"), "-pub", at("key.pub"))
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "entry 91 (line 91): truncated")

	// A checkpoint of a tampered log is refused.
	code, _, errOut = cli(t, "checkpoint", "-log", at("flipped.jsonl"), "-key", at("key"), "-name", "crm-erp")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "entry 42")

	// Another key, another log name, a changed checkpoint.
	code, _, errOut = cli(t, "keygen", "-out", at("other"))
	require.Equal(t, 0, code, errOut)
	code, _, errOut = cli(t, "verify", "-log", at("audit.jsonl"), "-checkpoint", at("cp.txt"), "-pub", at("other.pub"))
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "signed by key")
	code, _, errOut = cli(t, "verify", "-log", at("audit.jsonl"), "-checkpoint", at("cp.txt"), "-pub", at("key.pub"), "-name", "billing")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, `not "billing"`)
	require.NoError(t, os.WriteFile(at("cp-edited.txt"), []byte(strings.Replace(cpText, "seq 100", "seq 99", 1)), 0o644))
	code, _, errOut = cli(t, "verify", "-log", at("audit.jsonl"), "-checkpoint", at("cp-edited.txt"), "-pub", at("key.pub"))
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "signature does not match")
	require.NoError(t, os.WriteFile(at("cp-garbled.txt"), []byte(cpText[:50]), 0o644))
	code, _, _ = cli(t, "verify", "-log", at("audit.jsonl"), "-checkpoint", at("cp-garbled.txt"), "-pub", at("key.pub"))
	require.Equal(t, 1, code)
	// The private key is not a public key.
	code, _, errOut = cli(t, "verify", "-log", at("audit.jsonl"), "-checkpoint", at("cp.txt"), "-pub", at("key"))
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "private")
}

// TestRotatedLog: a file that continues another is anchored at a signed
// checkpoint of the other's last entry.
func TestRotatedLog(t *testing.T) {
	dir := t.TempDir()
	at := func(name string) string { return filepath.Join(dir, name) }
	code, _, errOut := cli(t, "keygen", "-out", at("key"))
	require.Equal(t, 0, code, errOut)
	lines := writeLog(t, at("all.jsonl"), 100)
	require.NoError(t, os.WriteFile(at("old.jsonl"), []byte(strings.Join(lines[:60], "")), 0o600))
	require.NoError(t, os.WriteFile(at("new.jsonl"), []byte(strings.Join(lines[60:], "")), 0o600))

	code, cp1, errOut := cli(t, "checkpoint", "-log", at("old.jsonl"), "-key", at("key"), "-name", "p")
	require.Equal(t, 0, code, errOut)
	require.NoError(t, os.WriteFile(at("cp1.txt"), []byte(cp1), 0o644))
	code, cp2, errOut := cli(t, "checkpoint", "-log", at("new.jsonl"), "-key", at("key"), "-name", "p", "-from", at("cp1.txt"))
	require.Equal(t, 0, code, errOut)
	require.Contains(t, cp2, "seq 100\n")
	require.NoError(t, os.WriteFile(at("cp2.txt"), []byte(cp2), 0o644))

	code, out, errOut := cli(t, "verify", "-log", at("new.jsonl"), "-from", at("cp1.txt"), "-checkpoint", at("cp2.txt"), "-pub", at("key.pub"))
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "ok: 40 entries (61 to 100)")
	// Without the anchor the new file looks like a log missing its start.
	code, _, errOut = cli(t, "verify", "-log", at("new.jsonl"))
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "entry 1 (line 1): deleted: entries 1 to 60 are missing")
}

func TestUsage(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		nil,
		{"frobnicate"},
		{"keygen"},
		{"keygen", "-out"},
		{"keygen", "-bogus", "x"},
		{"keygen", "-out", filepath.Join(dir, "k"), "extra"},
		{"checkpoint", "-log", "x"},
		{"verify"},
		{"verify", "-log", filepath.Join(dir, "missing.jsonl")},
		{"verify", "-log", "x", "-checkpoint", "cp.txt"},
		{"verify", "-log", "x", "-from", "cp.txt"},
		{"verify", "-log", "x", "-pub", filepath.Join(dir, "missing.pub")},
	} {
		code, _, errOut := cli(t, args...)
		require.Equal(t, 2, code, "%q: %s", args, errOut)
		require.NotEmpty(t, errOut, "%q says why", args)
	}
	code, out, _ := cli(t, "help")
	require.Equal(t, 0, code)
	require.Contains(t, out, "usage:")
}

// TestBinary builds the command and checks the exit statuses the shell
// sees.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "concord-audit")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	lines := writeLog(t, filepath.Join(dir, "audit.jsonl"), 5)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.jsonl"), []byte(lines[0]+lines[2]), 0o600))
	for _, tt := range []struct {
		args []string
		code int
	}{
		{[]string{"verify", "-log", filepath.Join(dir, "audit.jsonl")}, 0},
		{[]string{"verify", "-log", filepath.Join(dir, "bad.jsonl")}, 1},
		{[]string{"verify"}, 2},
	} {
		err := exec.Command(bin, tt.args...).Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		require.Equal(t, tt.code, code, "%q", tt.args)
	}
}
