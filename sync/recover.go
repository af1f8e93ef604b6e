package sync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/audit/alert"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/resolve"
	"github.com/concordsync/concord/transform"
)

// ErrPanic matches (with errors.Is) every [*PanicError]: user code (a
// connector, transform, resolver, gate, validator, audit sink or alerter)
// panicked, and the engine turned the panic into that call's failure.
var ErrPanic = errors.New("user code panicked")

// PanicError is a panic in user code, recovered by the engine and handled
// as the failure of the call that panicked. It matches [ErrPanic]; if the
// panic's value is an error, errors.Is and errors.As see it too (a nil
// pointer dereference is a runtime.Error).
type PanicError struct {
	// Call names what was called: "connector portal Apply", "inbound
	// transform of portal", "outbound transform of warehouse",
	// "resolver", "resolver (as a gate)", "gate 2" (its index in
	// Config.Gates), "validator", "audit sink", "alerter".
	Call string
	// Value is what was passed to panic. A call that ended its goroutine
	// with runtime.Goexit has the value GoexitValue.
	Value any
	// Stack is the panicking goroutine's stack, taken where the panic was
	// recovered (so it shows where it was raised), cut to MaxPanicStack
	// bytes.
	Stack []byte
}

// GoexitValue is the [PanicError.Value] of a connector, audit sink or
// alerter call that called runtime.Goexit (testing's t.FailNow does).
const GoexitValue = "runtime.Goexit called"

// MaxPanicStack is the most bytes of stack a [PanicError] keeps.
const MaxPanicStack = 16 << 10

// Error names the call, the value and, when it can be found in the stack,
// the function that panicked. The full stack is in Stack.
func (e *PanicError) Error() string {
	s := fmt.Sprintf("%s panicked: %v", e.Call, e.Value)
	if at := panicSite(e.Stack); at != "" {
		s += " (in " + at + ")"
	}
	return s
}

// Unwrap returns the panic's value if it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// Is reports whether target is [ErrPanic].
func (e *PanicError) Is(target error) bool { return target == ErrPanic }

// newPanicError builds the error for a recovered value; it must be called
// from the deferred function that recovered it.
func newPanicError(call string, v any) *PanicError {
	return &PanicError{Call: call, Value: v, Stack: cutStack(debug.Stack())}
}

func cutStack(st []byte) []byte {
	if len(st) > MaxPanicStack {
		st = append(st[:MaxPanicStack:MaxPanicStack], "\n... (cut)\n"...)
	}
	return st
}

// panicSite returns the function that raised the panic: the first frame
// below the last panic (or Goexit) frame that is not in the runtime.
func panicSite(stack []byte) string {
	lines := bytes.Split(stack, []byte("\n"))
	start := -1
	for i, l := range lines {
		if bytes.HasPrefix(l, []byte("panic(")) || bytes.HasPrefix(l, []byte("runtime.Goexit(")) {
			start = i
		}
	}
	if start < 0 {
		return ""
	}
	for _, l := range lines[start+1:] {
		if len(l) == 0 || l[0] == '\t' || bytes.HasPrefix(l, []byte("runtime.")) {
			continue
		}
		if i := bytes.LastIndexByte(l, '('); i > 0 {
			l = l[:i]
		}
		return string(l)
	}
	return ""
}

// deadReason is the reason a dead letter gives for err: its message and,
// for a panic, the stack.
func deadReason(err error) string {
	var pe *PanicError
	if errors.As(err, &pe) {
		return err.Error() + "\n" + string(pe.Stack)
	}
	return err.Error()
}

// guard runs f, turning a panic into a *PanicError for call. f runs in the
// caller's goroutine: this costs one deferred call. runtime.Goexit cannot be
// stopped; it ends the caller's goroutine as it would without guard.
func guard(call string, f func()) (perr error) {
	defer func() {
		if v := recover(); v != nil {
			perr = newPanicError(call, v)
		}
	}()
	f()
	return nil
}

// isolate runs f in a goroutine of its own and waits for it, turning a panic
// or runtime.Goexit into a *PanicError for call. Used for the calls that
// do I/O (connectors, sinks, alerters), where a goroutine costs nothing
// that matters, so that even Goexit cannot end the engine's goroutines.
func isolate(call string, f func()) error {
	done := make(chan error, 1)
	go func() {
		normal := false
		defer func() {
			if normal {
				done <- nil
				return
			}
			v := recover()
			if v == nil {
				v = GoexitValue // recover returns nil only during Goexit
			}
			done <- newPanicError(call, v)
		}()
		f()
		normal = true
	}()
	return <-done
}

// guardComponents wraps every user component of e once, so that each call
// into user code recovers its panics (see the package doc, "User code that
// panics").
func (e *Engine) guardComponents() {
	for _, s := range e.systems {
		guardConnector(s)
		// A transformer that vouches for never modifying its input (a
		// Mapping's, a Chain of them: transform.ReadOnly) is called on
		// the engine's record itself; any other gets a copy.
		s.lineageIn, s.lineageOut = s.Inbound, s.Outbound
		s.Inbound = guardedTransformer{"inbound transform of " + string(s.id), s.Inbound, !transform.ReadOnly(s.Inbound)}
		s.Outbound = guardedTransformer{"outbound transform of " + string(s.id), s.Outbound, !transform.ReadOnly(s.Outbound)}
	}
	fromResolver := len(e.gates) > len(e.cfg.Gates)
	for i, g := range e.gates {
		call := fmt.Sprintf("gate %d", i)
		if fromResolver {
			call = fmt.Sprintf("gate %d", i-1)
			if i == 0 {
				call = "resolver (as a gate)"
			}
		}
		e.gates[i] = guardedGate{call, g}
	}
	if r := e.cfg.Resolver; r != nil {
		if g, ok := r.(resolve.Gate); ok {
			e.cfg.Resolver = guardedResolverGate{guardedResolver{r}, guardedGate{"resolver (as a gate)", g}}
		} else {
			e.cfg.Resolver = guardedResolver{r}
		}
	}
	if e.cfg.Dictionary != nil {
		e.cfg.Dictionary = guardedValidator{e.cfg.Dictionary}
	}
	e.audit = guardedSink{e.audit, &callGate{}}
	if e.alerting.to != nil {
		e.alerting.to = guardedAlerter{e.alerting.to, &callGate{}}
	}
}

// The guards also hand user code its own copy of every map and slice the
// engine keeps using (own, ownConflict, ownChange, ownEvents): the
// contracts of transforms, resolvers, gates, validators and sinks say they
// must not modify what they are given, and one that does anyway
// (rec.Fields["city"] = strings.ToUpper(city), the Go idiom; a sink that
// redacts an event in place) changes only its copy, never the canonical
// values, a unit's history, a hold or the layout of the engine's units.

type guardedTransformer struct {
	call string
	t    transform.Transformer
	own  bool // user code (not transform.ReadOnly): give it a copy
}

func (g guardedTransformer) Transform(ctx context.Context, rec concord.Record) (out concord.Record, err error) {
	if g.own {
		rec = own(rec)
	}
	if perr := guard(g.call, func() { out, err = g.t.Transform(ctx, rec) }); perr != nil {
		return concord.Record{}, perr
	}
	return out, err
}

type guardedResolver struct{ r resolve.Resolver }

func (g guardedResolver) Resolve(ctx context.Context, c resolve.Conflict) (d resolve.Decision, err error) {
	c = ownConflict(c)
	if perr := guard("resolver", func() { d, err = g.r.Resolve(ctx, c) }); perr != nil {
		return resolve.Decision{}, perr
	}
	return d, err
}

// guardedResolverGate keeps the Gate ability of a resolver that has it.
type guardedResolverGate struct {
	guardedResolver
	guardedGate
}

type guardedGate struct {
	call string
	g    resolve.Gate
}

func (g guardedGate) Check(ctx context.Context, c resolve.Change) (v resolve.Verdict, err error) {
	c = ownChange(c)
	if perr := guard(g.call, func() { v, err = g.g.Check(ctx, c) }); perr != nil {
		return resolve.Verdict{}, perr
	}
	return v, err
}

type guardedValidator struct{ v Validator }

func (g guardedValidator) Validate(rec concord.Record) (err error) {
	rec = own(rec)
	if perr := guard("validator", func() { err = g.v.Validate(rec) }); perr != nil {
		return perr
	}
	return err
}

type guardedSink struct {
	s    audit.Sink
	gate *callGate
}

func (g guardedSink) Emit(ctx context.Context, events []audit.Event) error {
	events = ownEvents(events)
	var err error
	if perr := g.gate.run(ctx, "audit sink", func() { err = g.s.Emit(ctx, events) }); perr != nil {
		return perr
	}
	return err
}

type guardedAlerter struct {
	a    alert.Alerter
	gate *callGate
}

func (g guardedAlerter) Alert(ctx context.Context, a alert.Alert) error {
	var err error
	if perr := g.gate.run(ctx, "alerter", func() { err = g.a.Alert(ctx, a) }); perr != nil {
		return perr
	}
	return err
}

// guardConnector wraps c so that every call recovers panics, keeping
// exactly the optional abilities c has (connector.Getter,
// connector.Scanner): the engine finds them by type assertion.
// guardConnector wraps the connector of s, and each optional ability it
// has (s.getter, s.scanner, s.starter), so that a panic in any of them is
// that call's failure.
func guardConnector(s *system) {
	id, c, gate := string(s.id), s.Connector, &callGate{}
	s.Connector = guardedConnector{id, c, gate}
	if g, ok := c.(connector.Getter); ok {
		s.getter = guardedGetter{id, g, gate}
	}
	if cw, ok := c.(connector.Conditional); ok {
		var yes bool
		if perr := isolate("connector "+id+" ConditionalWrites", func() { yes = cw.ConditionalWrites() }); perr == nil && yes {
			s.tagged.Store(true)
		}
	}
	if sc, ok := c.(connector.Scanner); ok {
		s.scanner = guardedScanner{id, sc, gate}
		if st, ok := c.(connector.ScanStarter); ok {
			s.starter = guardedStarter{id, st, gate}
		}
	}
}

// The guarded connector calls run through the system's callGate: one that
// ignores its context is abandoned (ErrAbandoned), and the system is not
// called again until it returns. Their results are locals, read only
// after the call returned.

type guardedConnector struct {
	id   string
	c    connector.Connector
	gate *callGate
}

func (g guardedConnector) Changes(ctx context.Context, cur connector.Cursor, limit int) (connector.Batch, error) {
	return gated(ctx, g.gate, "connector "+g.id+" Changes", func() (connector.Batch, error) { return g.c.Changes(ctx, cur, limit) })
}

func (g guardedConnector) Apply(ctx context.Context, patches []connector.Patch) ([]connector.Result, error) {
	return gated(ctx, g.gate, "connector "+g.id+" Apply", func() ([]connector.Result, error) { return g.c.Apply(ctx, patches) })
}

type guardedGetter struct {
	id   string
	g    connector.Getter
	gate *callGate
}

func (g guardedGetter) Get(ctx context.Context, keys []string) ([]concord.Record, error) {
	return gated(ctx, g.gate, "connector "+g.id+" Get", func() ([]concord.Record, error) { return g.g.Get(ctx, keys) })
}

type guardedScanner struct {
	id   string
	s    connector.Scanner
	gate *callGate
}

func (g guardedScanner) Scan(ctx context.Context, cur connector.Cursor, limit int) (connector.Batch, error) {
	return gated(ctx, g.gate, "connector "+g.id+" Scan", func() (connector.Batch, error) { return g.s.Scan(ctx, cur, limit) })
}

type guardedStarter struct {
	id   string
	s    connector.ScanStarter
	gate *callGate
}

func (g guardedStarter) StartScan(ctx context.Context) (connector.ScanStart, error) {
	return gated(ctx, g.gate, "connector "+g.id+" StartScan", func() (connector.ScanStart, error) { return g.s.StartScan(ctx) })
}

// gated runs f through gate (callGate.run) and returns its results, or
// the zero value and the gate's error (a panic, an abandoned call). The
// results are written only into locals, read once f has returned.
func gated[T any](ctx context.Context, gate *callGate, call string, f func() (T, error)) (T, error) {
	var out T
	var err error
	if perr := gate.run(ctx, call, func() { out, err = f() }); perr != nil {
		var zero T
		return zero, perr
	}
	return out, err
}

// invalidClass is the class of a record the engine could not transform or
// validate: [ClassPanic] if user code panicked, else [ClassInvalid].
func invalidClass(err error) connector.Class {
	if errors.Is(err, ErrPanic) {
		return ClassPanic
	}
	return ClassInvalid
}
