package concord_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
)

// TestVocabularyDefinedOnce: the names of audit kinds, rules, error classes
// and failure steps are typed constants, each defined once; the code of the
// core packages uses the constants, never the name spelt out again as a
// string literal (which the compiler cannot check, and which drifts).
func TestVocabularyDefinedOnce(t *testing.T) {
	names := map[string]string{}
	for _, k := range []audit.Kind{audit.EditObserved, audit.MergeDecided, audit.ConflictDetected, audit.ConflictHeld,
		audit.ChangeRefused, audit.WriteAttempted, audit.WriteSucceeded, audit.WriteFailed, audit.ReadFailed,
		audit.RecordQuarantined, audit.WriteDeadLettered, audit.WriteReplayed, audit.DeadLetterDiscarded,
		audit.RetryAfterCapped, audit.ReadSuperseded, audit.CursorWentBack, audit.CursorReset} {
		names[string(k)] = "audit kind"
	}
	for _, r := range []concord.Rule{resolve.RuleSystemOfRecord, resolve.RuleLastWriterWins, resolve.RulePriority,
		resolve.RuleHold, resolve.RuleDeleteWins, resolve.RuleUpdateWins, resolve.RuleAnomaly, resolve.RuleApproval,
		recsync.RuleFastForward, recsync.RuleEqualValues, recsync.RuleUnresolved, recsync.RulePerson, recsync.RuleRecreated} {
		names[r.String()] = "rule"
	}
	for _, c := range []connector.Class{connector.ErrTransient, connector.ErrRateLimited, connector.ErrConflict,
		connector.ErrPermanent, connector.ErrNotFound, recsync.ClassInvalid, recsync.ClassPanic, recsync.ClassCursor, recsync.ClassMerge} {
		names[c.String()] = "error class"
	}
	for _, o := range []recsync.Op{recsync.OpRead, recsync.OpTransform, recsync.OpMerge, recsync.OpWrite, recsync.OpCursor, recsync.OpAudit} {
		names[o.String()] = "failure step"
	}
	if len(names) < 40 {
		t.Fatalf("only %d distinct names: two constants share a name", len(names))
	}
	for _, dir := range []string{"sync", "resolve", "audit", "connector"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatal(dir, files, err)
		}
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, name, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				if d, ok := n.(*ast.GenDecl); ok && d.Tok == token.CONST {
					return false // where the names are defined
				}
				if d, ok := n.(*ast.FuncDecl); ok && d.Name.Name == "String" {
					return false // names of other enums ("hold" as a resolver's outcome) may coincide
				}
				lit, ok := n.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return true
				}
				s, err := strconv.Unquote(lit.Value)
				if err != nil {
					return true
				}
				if what, ok := names[s]; ok {
					t.Errorf("%s: the %s %q spelt out; use its constant", fset.Position(lit.Pos()), what, s)
				}
				return true
			})
		}
	}
}
