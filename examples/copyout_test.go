// Package examples_test checks the example programs as a reader will use
// them: copied out of this repository into a module of their own.
package examples_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Each program in examples/ compiles, with its tests, when its files are
// copied into a fresh module that requires concord (replaced by
// this repository, so that no network is needed: dependencies come from
// the module cache, GOPROXY=off). A program that imports something only
// this repository can reach (an internal package, a sibling folder) fails
// here.
func TestProgramsBuildWhenCopiedOut(t *testing.T) {
	// go test puts its own go first in PATH.
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to build with")
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	dirs, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var programs []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d.Name(), "main.go")); d.IsDir() && err == nil {
			programs = append(programs, d.Name())
		}
	}
	if len(programs) < 3 {
		t.Fatalf("found the programs %v; want address-sync, crm-erp and outage at least", programs)
	}
	for _, name := range programs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dst := t.TempDir()
			files, err := filepath.Glob(filepath.Join(name, "*"))
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				if fi, err := os.Stat(f); err != nil || fi.IsDir() {
					continue // a program is one folder of files
				}
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dst, filepath.Base(f)), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			mod := "module example.com/" + name + "\n\ngo 1.26.0\n\n" +
				"require github.com/concordsync/concord v0.0.0\n\n" +
				"replace github.com/concordsync/concord => " + repo + "\n"
			if err := os.WriteFile(filepath.Join(dst, "go.mod"), []byte(mod), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dst, "go.sum"), sum, 0o644); err != nil {
				t.Fatal(err)
			}
			// vet compiles the program and its tests (and checks them)
			// without the link step, which would triple the time.
			for _, args := range [][]string{{"vet", "."}} {
				cmd := exec.Command(gobin, args...)
				cmd.Dir = dst
				cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off", "GOSUMDB=off",
					"GOTOOLCHAIN=local") // the usual build cache: what the suite built already is reused
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Run(); err != nil {
					if strings.Contains(out.String(), "GOPROXY=off") {
						// The module cache lacks a module the repository's own
						// build never needed: no network to fetch it here.
						t.Skipf("go %s needs a module that is not in the module cache:\n%s", strings.Join(args, " "), out.String())
					}
					t.Fatalf("go %s in a copy of examples/%s: %v\n%s", strings.Join(args, " "), name, err, out.String())
				}
			}
		})
	}
}
