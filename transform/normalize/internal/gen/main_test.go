package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	src = "/usr/share/iso-codes/json"
	pc  = "/usr/share/pkgconfig/iso-codes.pc"
)

var generated = []string{"zz_generated_countries.go", "zz_generated_subdivisions.go", "zz_generated_currencies.go"}

// TestGeneratedUpToDate regenerates the data twice from the installed
// iso-codes and checks that both runs give the committed files byte for
// byte: the output is deterministic, and the committed files are neither
// stale nor edited by hand. It is skipped where iso-codes is not installed
// or is another release than the committed files were made from.
func TestGeneratedUpToDate(t *testing.T) {
	if _, err := os.Stat(src); err != nil {
		t.Skipf("iso-codes not installed (%v): apt-get install -y iso-codes", err)
	}
	version, err := readVersion(pc)
	if err != nil {
		t.Fatal(err)
	}
	dirs := []string{t.TempDir(), t.TempDir()}
	for _, dir := range dirs {
		if err := run(src, pc, dir, []string{"US", "CA", "AU", "DE", "GB"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range generated {
		committed := read(t, filepath.Join("..", "..", name))
		a, b := read(t, filepath.Join(dirs[0], name)), read(t, filepath.Join(dirs[1], name))
		if a != b {
			t.Errorf("%s: two runs differ (-first +second):\n%s", name, cmp.Diff(a, b))
		}
		if a != committed {
			if !strings.Contains(committed, "from iso-codes "+version+";") {
				t.Skipf("installed iso-codes %s is not the release the committed files were made from", version)
			}
			t.Errorf("%s is not what go generate writes (-committed +generated):\n%s", name, cmp.Diff(committed, a))
		}
	}
}

func TestMinorUnitsTableChecked(t *testing.T) {
	if _, err := os.Stat(src); err != nil {
		t.Skipf("iso-codes not installed (%v)", err)
	}
	minorUnits["ZZZ"] = 0
	defer delete(minorUnits, "ZZZ")
	if _, err := currencies(src); err == nil {
		t.Errorf("currencies: a minor-units entry for a code iso-codes does not list was accepted")
	}
}

func read(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
