package concord_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The exported test helpers are imported by hosts' own tests: they must
// not hand hosts testify (the project's own tests use it; see README,
// "Dependencies").
func TestExportedTestHelpersDoNotImportTestify(t *testing.T) {
	// go test puts its own go first in PATH.
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to list dependencies with")
	}
	helpers := []string{
		"./connector/connectortest", "./sync/store/storetest", "./transform/transformtest", "./audit/audittest",
	}
	cmd := exec.Command(gobin, append([]string{"list", "-deps", "-f", "{{.ImportPath}}"}, helpers...)...)
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < len(helpers) {
		t.Fatalf("go list listed %d packages for %d helpers: %q", len(deps), len(helpers), out)
	}
	for _, d := range deps {
		if strings.HasPrefix(d, "github.com/stretchr/") {
			t.Errorf("an exported test helper depends on %s", d)
		}
	}
}
