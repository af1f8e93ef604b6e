// Command concord-audit makes keys, signs checkpoints of a chained audit
// log and verifies a log offline, with nothing but the log, checkpoints
// and the public key (package audit, "Verifying a log offline").
//
// Usage:
//
//	concord-audit keygen -out key
//	concord-audit checkpoint -log audit.jsonl -key key -name pipeline [-from old-cp.txt] > cp.txt
//	concord-audit verify -log audit.jsonl [-checkpoint cp.txt ... -pub key.pub] [-from old-cp.txt] [-name pipeline]
//
// keygen writes a new ed25519 private key to the file named by -out (mode
// 0600; an existing file is not overwritten) and its public key to the
// same name with ".pub" added.
//
// checkpoint verifies the log (a file written by
// audit.ChainedJSONLinesSink) and writes a checkpoint of its last entry,
// signed with the private key, to standard output.
//
// verify checks the log: every entry's hash, the sequence and the links,
// and each -checkpoint (its signature with -pub first, then that the log
// holds its entry with its hash). -from anchors a log that does not start
// at entry 1 (a rotated file) at a signed checkpoint of the entry before
// its first; -name requires the checkpoints to be of that log.
//
// The exit status is 0 when the log verifies, 1 when it does not (the
// message names the entry, for example "entry 4711 (line 4711): modified:
// hash mismatch: the entry's bytes changed") or a checkpoint's signature
// does not, and 2 for a usage error or a file that cannot be read.
package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/concordsync/concord/audit"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit statuses.
const (
	exitOK       = 0
	exitFailed   = 1
	exitUsage    = 2
	usageSummary = `usage:
  concord-audit keygen -out key
  concord-audit checkpoint -log audit.jsonl -key key -name pipeline [-from old-cp.txt]
  concord-audit verify -log audit.jsonl [-checkpoint cp.txt ... -pub key.pub] [-from old-cp.txt] [-name pipeline]
`
)

// failure is an error that makes run exit with status 1: the log or a
// checkpoint does not verify.
type failure struct{ error }

// now is the clock for checkpoints; tests replace it.
var now = time.Now

// run runs the command with args (without the program name) and returns
// its exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageSummary)
		return exitUsage
	}
	var cmd func([]string, io.Writer, io.Writer) error
	switch args[0] {
	case "keygen":
		cmd = keygen
	case "checkpoint":
		cmd = checkpoint
	case "verify":
		cmd = verify
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usageSummary)
		return exitOK
	default:
		fmt.Fprintf(stderr, "concord-audit: unknown command %q\n%s", args[0], usageSummary)
		return exitUsage
	}
	err := cmd(args[1:], stdout, stderr)
	var f failure
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitUsage
	case errors.As(err, &f):
		msg := strings.ReplaceAll(strings.TrimPrefix(err.Error(), "audit: "), ": audit: ", ": ")
		fmt.Fprintf(stderr, "concord-audit %s: %s\n", args[0], msg)
		return exitFailed
	default:
		fmt.Fprintf(stderr, "concord-audit %s: %v\n", args[0], err)
		return exitUsage
	}
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("concord-audit "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses args and refuses positional arguments.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return flag.ErrHelp // the flag package has printed why
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

func keygen(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keygen", stderr)
	out := fs.String("out", "", "`file` for the private key; the public key goes to file.pub")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("-out is required")
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	privText, err := audit.MarshalPrivateKey(priv)
	if err != nil {
		return err
	}
	pubText, err := audit.MarshalPublicKey(pub)
	if err != nil {
		return err
	}
	if err := writeNew(*out, privText, 0o600); err != nil {
		return err
	}
	if err := writeNew(*out+".pub", pubText, 0o644); err != nil {
		os.Remove(*out)
		return err
	}
	fmt.Fprintf(stdout, "wrote %s and %s.pub (key id %x)\n", *out, *out, audit.KeyID(pub))
	return nil
}

// writeNew writes a file that must not exist yet.
func writeNew(name string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(name)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return err
	}
	return nil
}

func checkpoint(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("checkpoint", stderr)
	logName := fs.String("log", "", "the chained JSON lines `file`")
	keyName := fs.String("key", "", "the private key `file`")
	name := fs.String("name", "", "the log's `name` (the pipeline), written in the checkpoint")
	from := fs.String("from", "", "a signed checkpoint `file` of the entry before the log's first, for a log that does not start at entry 1")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *logName == "" || *keyName == "" || *name == "" {
		return errors.New("-log, -key and -name are required")
	}
	keyText, err := os.ReadFile(*keyName)
	if err != nil {
		return err
	}
	priv, err := audit.ParsePrivateKey(keyText)
	if err != nil {
		return fmt.Errorf("%s: %w", *keyName, err)
	}
	var opts []audit.VerifyOption
	if *from != "" {
		cp, err := readCheckpoint(*from, priv.Public().(ed25519.PublicKey), *name)
		if err != nil {
			return err
		}
		opts = append(opts, audit.WithAnchor(cp.Head()))
	}
	res, err := verifyFile(*logName, opts)
	if err != nil {
		return err
	}
	if res.Entries == 0 {
		return fmt.Errorf("%s: no entries to sign", *logName)
	}
	scp, err := audit.SignCheckpoint(priv, audit.Checkpoint{Log: *name, Seq: res.Head.Seq, Hash: res.Head.Hash, Time: now()})
	if err != nil {
		return err
	}
	text, err := scp.MarshalText()
	if err != nil {
		return err
	}
	_, err = stdout.Write(text)
	return err
}

func verify(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify", stderr)
	logName := fs.String("log", "", "the chained JSON lines `file`")
	pubName := fs.String("pub", "", "the public key `file` that checks the checkpoints")
	name := fs.String("name", "", "require the checkpoints to be of the log of this `name`")
	from := fs.String("from", "", "a signed checkpoint `file` of the entry before the log's first, for a log that does not start at entry 1")
	var cpNames []string
	fs.Func("checkpoint", "a signed checkpoint `file` the log must match (repeatable)", func(s string) error {
		cpNames = append(cpNames, s)
		return nil
	})
	if err := parse(fs, args); err != nil {
		return err
	}
	if *logName == "" {
		return errors.New("-log is required")
	}
	if (len(cpNames) > 0 || *from != "") && *pubName == "" {
		return errors.New("-checkpoint and -from need -pub")
	}
	var pub ed25519.PublicKey
	if *pubName != "" {
		text, err := os.ReadFile(*pubName)
		if err != nil {
			return err
		}
		if pub, err = audit.ParsePublicKey(text); err != nil {
			return fmt.Errorf("%s: %w", *pubName, err)
		}
	}
	var opts []audit.VerifyOption
	if *from != "" {
		cp, err := readCheckpoint(*from, pub, *name)
		if err != nil {
			return err
		}
		opts = append(opts, audit.WithAnchor(cp.Head()))
	}
	for _, n := range cpNames {
		cp, err := readCheckpoint(n, pub, *name)
		if err != nil {
			return err
		}
		opts = append(opts, audit.WithCheckpoint(cp))
	}
	res, err := verifyFile(*logName, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: ok: %d entries (%d to %d), head %s, %d checkpoints matched\n",
		*logName, res.Entries, res.First, res.Head.Seq, res.Head, res.Checkpoints)
	return nil
}

// readCheckpoint reads and verifies a signed checkpoint; a checkpoint that
// does not verify, or is of another log than name (when given), is a
// failure.
func readCheckpoint(file string, pub ed25519.PublicKey, name string) (audit.Checkpoint, error) {
	text, err := os.ReadFile(file)
	if err != nil {
		return audit.Checkpoint{}, err
	}
	scp, err := audit.ParseCheckpoint(text)
	if err != nil {
		return audit.Checkpoint{}, failure{fmt.Errorf("%s: %w", file, err)}
	}
	if err := scp.Verify(pub); err != nil {
		return audit.Checkpoint{}, failure{fmt.Errorf("%s: %w", file, err)}
	}
	if name != "" && scp.Log != name {
		return audit.Checkpoint{}, failure{fmt.Errorf("%s: checkpoint is of log %q, not %q", file, scp.Log, name)}
	}
	return scp.Checkpoint, nil
}

// verifyFile verifies the log; tampering is a failure.
func verifyFile(name string, opts []audit.VerifyOption) (audit.Result, error) {
	f, err := os.Open(name)
	if err != nil {
		return audit.Result{}, err
	}
	defer f.Close()
	res, err := audit.VerifyJSONLines(f, opts...)
	if errors.Is(err, audit.ErrTampered) {
		return res, failure{fmt.Errorf("%s: %w", name, err)}
	}
	if err != nil {
		return res, fmt.Errorf("%s: %w", name, err)
	}
	return res, nil
}
