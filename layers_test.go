package concord_test

import (
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/concordsync/concord"

// layers says, for every package of the module (by path inside it; "" is
// the root), which packages of the module its non-test files may import
// directly ("*": any). Arrows point down: the vocabulary at the root, the
// contracts above it, the engine above them, and adapters, drivers and test
// helpers beside what they implement; nothing imports upwards. A package
// missing here fails the test, so that a new package takes its place in
// the layering on purpose (README, "Architecture").
var layers = map[string][]string{
	// The shared vocabulary.
	"": nil,
	// Contracts: what hosts implement and the engine calls.
	"audit":       {""},
	"audit/alert": {""},
	"connector":   {""},
	"resolve":     {""},
	"transform":   {""},
	// The store contract: a leaf that third-party stores implement.
	"sync/store": {"", "connector"},
	// Sealing sensitive values at rest: a leaf (standard library only),
	// which the state codec and hosts (building the key ring) import.
	"sync/seal": nil,
	// The engine's own state and its encoding, and the stores' checksums.
	"internal/state":    {"", "connector", "resolve", "sync/seal", "sync/store"},
	"internal/checksum": nil,
	"internal/pgtest":   nil,
	// The engine: the contracts, never an adapter.
	"sync": {"", "audit", "audit/alert", "audit/patterns", "connector", "internal/state", "resolve", "sync/reconcile", "sync/seal", "sync/store", "transform"},
	// Adapters, drivers and helpers, beside their contract.
	"audit/alert/notify":               {"audit/alert"},
	"audit/audittest":                  {"", "audit"},
	"audit/patterns":                   {"", "audit"},
	"audit/cmd/concord-audit":          {"audit"},
	"connector/connectortest":          {"", "connector"},
	"connector/fake":                   {"", "connector"},
	"transform/dict":                   {"", "transform"},
	"transform/dedupe":                 {""},
	"transform/enrich":                 {"", "transform"},
	"transform/normalize":              {"", "transform", "transform/dict"},
	"transform/normalize/internal/gen": nil,
	"transform/transformtest":          {"", "transform", "transform/dict"},
	"transform/suggest":                {"transform", "transform/dict", "transform/normalize"},
	"connector/csvfile":                {"", "connector"},
	"connector/sqltable":               {"", "connector"},
	"connector/rest":                   {"", "connector"},
	"connector/rest/resttest":          nil,
	"sync/store/storetest":             {"", "connector", "sync/store"},
	"sync/reconcile":                   {"", "connector", "resolve", "transform"},
	"sync/store/boltstore":             {"", "connector", "internal/checksum", "internal/state", "sync/store"},
	"sync/store/pgstore":               {"", "connector", "internal/checksum", "internal/state", "sync/store"},
	"internal/sim":                     {"*"},
	"internal/canary":                  {"*"},
	"internal/enginetest":              {"*"},
	"examples/address-sync":            {"*"},
	"examples/approval":                {"*"},
	"examples/crm-erp":                 {"*"},
	"examples/outage":                  {"*"},
	"examples/reconcile":               {"*"},
	"examples":                         nil,
}

// banned lists packages outside the module that a package must not depend
// on, even indirectly: the core stays free of network clients, which live
// in adapters (audit/alert/notify, connectors).
var banned = map[string][]string{
	"":            {"net/http", "net/smtp", "net/mail"},
	"audit":       {"net/http", "net/smtp", "net/mail"},
	"audit/alert": {"net/http", "net/smtp", "net/mail"},
	"connector":   {"net/http"},
	"sync/store":  {"net/http", "net/smtp", "net/mail"},
	"resolve":     {"net/http", "net/smtp", "net/mail"},
	"transform":   {"net/http", "net/smtp", "net/mail"},
	"sync":        {"net/http", "net/smtp", "net/mail"},
}

// TestImportLayers enforces layers and banned with go list.
func TestImportLayers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list over the module")
	}
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}\t{{join .Imports \" \"}}\t{{join .Deps \" \"}}", module+"/...").Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	seen := map[string]bool{}
	for line := range strings.Lines(strings.TrimSpace(string(out))) {
		parts := strings.Split(strings.TrimRight(line, "\n"), "\t")
		if len(parts) != 3 {
			t.Fatalf("go list line %q", line)
		}
		pkg := rel(parts[0])
		seen[pkg] = true
		may, ok := layers[pkg]
		if !ok {
			t.Errorf("package %q has no place in layers: add it (and to the README's architecture section)", pkg)
			continue
		}
		for imp := range strings.FieldsSeq(parts[1]) {
			if !inModule(imp) || slices.Contains(may, "*") {
				continue
			}
			if r := rel(imp); !slices.Contains(may, r) {
				t.Errorf("%s imports %s; it may import only %q", show(pkg), show(r), may)
			}
		}
		for dep := range strings.FieldsSeq(parts[2]) {
			if slices.Contains(banned[pkg], dep) {
				t.Errorf("%s depends on %s, which it must not, even indirectly", show(pkg), dep)
			}
		}
	}
	for pkg := range layers {
		if !seen[pkg] {
			t.Errorf("layers names %q, which go list does not know: remove it", pkg)
		}
	}
}

func inModule(p string) bool { return p == module || strings.HasPrefix(p, module+"/") }

func rel(p string) string { return strings.TrimPrefix(strings.TrimPrefix(p, module), "/") }

func show(r string) string {
	if r == "" {
		return "concord"
	}
	return path.Join("concord", r)
}
