package sync

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/internal/state"
)

// Scope is what the pipeline may do to one system: least privilege. A
// write outside it is refused before the connector is called; see
// [System.Scope].
type Scope struct {
	// Create allows the pipeline to create records in the system (a
	// record that another system created, or that the system deleted and
	// another edited).
	Create bool
	// Delete allows the pipeline to delete records in the system.
	Delete bool
	// Fields lists the fields the pipeline may set in existing records
	// (and in records it creates), by the system's own names: the names
	// of the patches its connector is given, after the outbound
	// transform. A patch that sets any other field is refused whole: a
	// field the system should never receive is one its outbound
	// transform drops (a declared, visible choice, not a silent loss).
	Fields []string
	// Refused says what becomes of a record whose write is refused:
	// [KeepPending], the default, keeps it pending (the write is planned,
	// and refused, audited and alerted, again every cycle, until the
	// scope or the data changes); [DeadLetterRefused] dead-letters it.
	Refused RefusalPolicy
}

// RefusalPolicy is what becomes of a record whose write a [Scope] refuses.
type RefusalPolicy int8

const (
	// KeepPending keeps the record pending for the system.
	KeepPending RefusalPolicy = iota
	// DeadLetterRefused dead-letters the write (class [ClassScope]):
	// it is not planned again until replayed or discarded.
	DeadLetterRefused
)

// ClassScope is the class of a write refused by the target system's
// [Scope]: audit events, alerts, dead letters and metrics carry it.
const ClassScope connector.Class = "scope"

// ErrOutOfScope is matched (errors.Is) by a [*ScopeError].
var ErrOutOfScope = errors.New("concord: write outside the system's scope")

// ScopeError is a write refused by the target system's [Scope] before its
// connector was called.
type ScopeError struct {
	System concord.SystemID
	Key    string
	// Op is what the write would have done: "create", "update" or
	// "delete".
	Op string
	// Fields the scope does not allow (for create and update), sorted.
	Fields []string
}

// Error names the operation, the record, the system and the fields refused.
func (e *ScopeError) Error() string {
	s := fmt.Sprintf("concord: %s of record %q in %s refused: ", e.Op, e.Key, e.System)
	if len(e.Fields) > 0 {
		return s + "fields " + strings.Join(quoteAll(e.Fields), ", ") + " are outside its scope"
	}
	return s + "its scope does not allow " + e.Op
}

// Is reports whether target is ErrOutOfScope.
func (e *ScopeError) Is(target error) bool { return target == ErrOutOfScope }

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// compiledScope is a Scope with its fields as a set.
type compiledScope struct {
	Scope
	fields map[string]bool
}

func compileScope(s *Scope) (*compiledScope, error) {
	if s == nil {
		return nil, nil
	}
	if s.Refused != KeepPending && s.Refused != DeadLetterRefused {
		return nil, fmt.Errorf("unknown Scope.Refused %d", s.Refused)
	}
	c := &compiledScope{Scope: *s, fields: map[string]bool{}}
	c.Fields = slices.Clone(s.Fields)
	for _, f := range s.Fields {
		if f == "" {
			return nil, errors.New("an empty field name in Scope.Fields")
		}
		c.fields[f] = true
	}
	return c, nil
}

// check returns the *ScopeError for a patch s's scope does not allow, nil
// if it does (or s has no scope).
func (s *system) checkScope(p *connector.Patch) error {
	sc := s.scope
	if sc == nil {
		return nil
	}
	e := &ScopeError{System: s.id, Key: p.Key, Op: "update"}
	switch {
	case p.Delete:
		if sc.Delete {
			return nil
		}
		e.Op = "delete"
		return e
	case p.Create:
		e.Op = "create"
		if !sc.Create {
			return e
		}
	}
	for f := range p.Set {
		if !sc.fields[f] {
			e.Fields = append(e.Fields, f)
		}
	}
	if len(e.Fields) == 0 {
		return nil
	}
	slices.Sort(e.Fields)
	return e
}

// refuse records a write that the target's scope refused: a failure,
// audited (audit.WriteRefused), counted (SystemReport.OutOfScope) and
// alerted; the record stays pending, or is dead-lettered if the scope
// says so. The connector is not called.
func (c *cycle) refuse(st *state.Record, s *system, err *ScopeError) {
	c.fail(s.id, st.Key, OpWrite, err)
	c.report.Systems[s.id].OutOfScope++
	c.events.add(audit.Event{Time: c.e.now(), Kind: audit.WriteRefused, Cycle: c.report.Cycle,
		System: s.id, Key: st.Key, Fields: err.Fields, Deleted: err.Op == "delete",
		Error: err.Error(), ErrorClass: ClassScope.String()})
	if s.scope.Refused == DeadLetterRefused {
		canonical := concord.Record{Key: st.Key, Fields: st.Fields, Deleted: st.Deleted}
		c.park(st, s, canonical, canonical, err, ClassScope)
	}
}
