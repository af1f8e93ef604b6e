package sync

import (
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/resolve"
	"github.com/concordsync/concord/sync/store"
)

type plainConn struct{}

func (plainConn) Changes(context.Context, connector.Cursor, int) (connector.Batch, error) {
	panic("changes")
}
func (plainConn) Apply(context.Context, []connector.Patch) ([]connector.Result, error) {
	return nil, io.ErrUnexpectedEOF
}

type getConn struct{ plainConn }

func (getConn) Get(context.Context, []string) ([]concord.Record, error) { panic(io.EOF) }

type scanConn struct{ plainConn }

func (scanConn) Scan(context.Context, connector.Cursor, int) (connector.Batch, error) {
	return connector.Batch{Next: "n"}, nil
}

type bothConn struct {
	getConn
	scanConn
}

func (bothConn) Changes(context.Context, connector.Cursor, int) (connector.Batch, error) {
	return connector.Batch{}, nil
}
func (bothConn) Apply(context.Context, []connector.Patch) ([]connector.Result, error) {
	return nil, nil
}

type startConn struct{ scanConn }

func (startConn) StartScan(context.Context) (connector.ScanStart, error) { panic("start") }

// A guarded system has exactly the abilities of its connector, and passes
// results and errors through unchanged.
func TestGuardedConnectorKeepsExactlyItsAbilities(t *testing.T) {
	ctx := context.Background()
	guard := func(c connector.Connector) *system {
		s := &system{id: "sys", System: System{Connector: c}}
		guardConnector(s)
		return s
	}
	for _, tc := range []struct {
		c                      connector.Connector
		getter, scans, starter bool
	}{
		{plainConn{}, false, false, false}, {getConn{}, true, false, false}, {scanConn{}, false, true, false},
		{bothConn{}, true, true, false}, {startConn{}, false, true, true},
	} {
		s := guard(tc.c)
		if (s.getter != nil) != tc.getter || (s.scanner != nil) != tc.scans || (s.starter != nil) != tc.starter {
			t.Fatalf("%T guarded: Getter %v Scanner %v ScanStarter %v; want %v %v %v", tc.c, s.getter != nil, s.scanner != nil, s.starter != nil,
				tc.getter, tc.scans, tc.starter)
		}
		if s.getter != nil {
			if _, err := s.getter.Get(ctx, []string{"k"}); !errors.Is(err, io.EOF) || !errors.Is(err, ErrPanic) {
				t.Fatalf("Get: %v", err)
			}
		}
		if s.scanner != nil {
			if b, err := s.scanner.Scan(ctx, "", 1); err != nil || b.Next != "n" {
				t.Fatalf("Scan = %+v, %v", b, err)
			}
		}
		if s.starter != nil {
			var pe *PanicError
			if _, err := s.starter.StartScan(ctx); !errors.As(err, &pe) || pe.Call != "connector sys StartScan" {
				t.Fatalf("StartScan: %v", err)
			}
		}
	}
	g := guard(plainConn{}).Connector
	_, err := g.Changes(ctx, "", 1)
	var pe *PanicError
	if !errors.As(err, &pe) || pe.Call != "connector sys Changes" || pe.Value != "changes" {
		t.Fatalf("Changes error = %#v", err)
	}
	if _, err := g.Apply(ctx, nil); err != io.ErrUnexpectedEOF {
		t.Fatalf("Apply error = %v; want the connector's own, unwrapped", err)
	}
	_, err = guard(getConn{}).getter.Get(ctx, nil)
	if !errors.As(err, &pe) || pe.Call != "connector sys Get" || !errors.Is(err, io.EOF) || !errors.Is(err, ErrPanic) {
		t.Fatalf("Get error = %v", err)
	}
	if _, ok := guard(bothConn{}).Connector.(connector.Getter); ok {
		t.Error("the guarded Connector itself is a Getter: the engine must use system.getter, which is guarded")
	}
}

type condConn struct {
	plainConn
	yes bool
}

func (c condConn) ConditionalWrites() bool { return c.yes }

type condPanicConn struct{ plainConn }

func (condPanicConn) ConditionalWrites() bool { panic("conditional") }

// A connector that says it has conditional writes lets the engine write
// creates outside a full read (cycle.unguarded); one that says no, has no
// such method, or panics in it, does not.
func TestGuardedConnectorConditionalWrites(t *testing.T) {
	for _, tc := range []struct {
		c    connector.Connector
		want bool
	}{{plainConn{}, false}, {condConn{yes: true}, true}, {condConn{}, false}, {condPanicConn{}, false}} {
		s := &system{id: "sys", System: System{Connector: tc.c}}
		guardConnector(s)
		if got := s.tagged.Load(); got != tc.want {
			t.Errorf("%T: tagged = %v, want %v", tc.c, got, tc.want)
		}
	}
}

// guardConnector knows every optional ability package connector declares:
// a new one must be added there, or guarded connectors would hide it.
func TestGuardKnowsEveryOptionalConnectorInterface(t *testing.T) {
	files, err := filepath.Glob("../connector/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("connector sources: %v %v", files, err)
	}
	var found []string
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range af.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok {
				continue
			}
			for _, s := range gd.Specs {
				if ts, ok := s.(*ast.TypeSpec); ok && ts.Name.IsExported() {
					if _, ok := ts.Type.(*ast.InterfaceType); ok {
						found = append(found, ts.Name.Name)
					}
				}
			}
		}
	}
	slices.Sort(found)
	if want := []string{"Conditional", "Connector", "Getter", "ScanStarter", "Scanner"}; !slices.Equal(found, want) {
		t.Fatalf("package connector declares interfaces %v; guardConnector handles %v: teach it the new ones", found, want)
	}
}

type resGate struct{}

func (resGate) Resolve(context.Context, resolve.Conflict) (resolve.Decision, error) {
	return resolve.Decision{Outcome: resolve.Pick, Winner: 1}, nil
}
func (resGate) Check(context.Context, resolve.Change) (resolve.Verdict, error) {
	var p *resolve.Verdict
	return *p, nil
}

func TestGuardedResolverKeepsItsGateAbility(t *testing.T) {
	e, err := New(Config{
		Systems:  []System{{ID: "a", Connector: plainConn{}}, {ID: "b", Connector: plainConn{}}},
		Resolver: resGate{},
		Store:    store.NewMemory(),
		Gates:    []resolve.Gate{resolve.GateFunc(func(context.Context, resolve.Change) (resolve.Verdict, error) { panic("g") })},
	})
	if err != nil {
		t.Fatal(err)
	}
	g, ok := e.cfg.Resolver.(resolve.Gate)
	if !ok {
		t.Fatal("the guarded resolver lost its Gate ability")
	}
	if d, err := e.cfg.Resolver.Resolve(context.Background(), resolve.Conflict{}); err != nil || d.Winner != 1 {
		t.Fatalf("Resolve = %+v, %v", d, err)
	}
	for i, want := range []struct{ gate resolve.Gate }{{g}, {e.gates[0]}} {
		_, err := want.gate.Check(context.Background(), resolve.Change{})
		var pe *PanicError
		if !errors.As(err, &pe) || pe.Call != "resolver (as a gate)" {
			t.Fatalf("%d: Check error = %v", i, err)
		}
	}
	_, err = e.gates[1].Check(context.Background(), resolve.Change{})
	var pe *PanicError
	if !errors.As(err, &pe) || pe.Call != "gate 0" {
		t.Fatalf("gate error = %v", err)
	}
}

func recurse(n int) {
	if n == 0 {
		panic("deep")
	}
	recurse(n - 1)
}

func TestPanicErrorFormatAndStackCap(t *testing.T) {
	err := guard("resolver", func() { recurse(5000) })
	var pe *PanicError
	if !errors.As(err, &pe) {
		t.Fatalf("%v", err)
	}
	if len(pe.Stack) > MaxPanicStack+64 {
		t.Fatalf("stack of %d bytes; cap %d", len(pe.Stack), MaxPanicStack)
	}
	if st := cutStack(make([]byte, 3*MaxPanicStack)); len(st) > MaxPanicStack+64 || !strings.HasSuffix(string(st), "(cut)\n") {
		t.Fatalf("a long stack cut to %d bytes, ending %q", len(st), st[len(st)-20:])
	}
	if st := cutStack([]byte("short")); string(st) != "short" {
		t.Fatalf("a short stack became %q", st)
	}
	if got, want := pe.Error(), "resolver panicked: deep (in github.com/concordsync/concord/sync.recurse)"; got != want {
		t.Fatalf("Error() = %q; want %q", got, want)
	}
	if pe.Unwrap() != nil {
		t.Fatal("a string panic unwraps to an error")
	}
	if errors.Is(err, io.EOF) || !errors.Is(err, ErrPanic) {
		t.Fatal("Is")
	}
	// A nil panic value is a *runtime.PanicNilError, not a silent success.
	if err := guard("gate 1", func() { panic(nil) }); !errors.Is(err, ErrPanic) {
		t.Fatalf("panic(nil) = %v", err)
	}
	// Hostile stacks: nothing to find, or garbage.
	for _, s := range []string{"", "panic(", "panic(\n", "panic(\nruntime.x()\n\n", "\x00\xff"} {
		_ = panicSite([]byte(s))
	}
	if got := deadReason(errors.New("plain")); got != "plain" {
		t.Fatalf("deadReason = %q", got)
	}
}

func TestIsolateSurvivesGoexitAndPanics(t *testing.T) {
	for _, f := range []func(){
		func() { panic("x") },
		func() { panic(io.EOF) },
		runtime.Goexit,
	} {
		if err := isolate("alerter", f); !errors.Is(err, ErrPanic) {
			t.Fatalf("isolate = %v", err)
		}
	}
	if err := isolate("alerter", func() {}); err != nil {
		t.Fatalf("isolate of a normal call = %v", err)
	}
}
