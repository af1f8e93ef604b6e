package resolve

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/concordsync/concord"
)

// ChainResolver tries resolvers in order; see [Chain]. It is also a [Gate].
type ChainResolver struct {
	rs []Resolver
}

// Chain returns a resolver that asks rs in order.
//
// As a [Resolver], the first member whose Decision is not Undecided decides,
// and the members after it are not asked; if every member is undecided (or
// rs is empty), the Chain is Undecided. A member's error stops the chain and
// is returned wrapped in a [*UnitError] naming the record, the unit and the
// member's position. So is a Decision the engine could not carry out (a Pick
// whose Winner is out of range, an unknown Outcome): [ErrBadDecision].
//
// As a [Gate], Check asks, in order, every member that implements Gate (for
// instance a [SystemOfRecordResolver] or a nested Chain); members that do not
// are skipped. The first verdict that is not Accept decides; if none objects
// (or no member is a Gate), the change is accepted. Errors stop the chain as
// for Resolve.
//
// ctx is passed to every member unchanged; Chain itself does no I/O. Chain
// panics if a member is nil (or a nil [Func]): a chain with a hole in it is a
// programming error, better found at start-up than mid-cycle. It copies rs.
// A ChainResolver is safe for concurrent use if its members are.
func Chain(rs ...Resolver) *ChainResolver {
	for i, r := range rs {
		if isNil(r) {
			panic(fmt.Sprintf("resolve.Chain: resolver %d is nil", i))
		}
	}
	return &ChainResolver{rs: append([]Resolver(nil), rs...)}
}

// Resolve returns the first decision of a member that is not Undecided.
func (ch *ChainResolver) Resolve(ctx context.Context, c Conflict) (Decision, error) {
	for i, r := range ch.rs {
		d, err := r.Resolve(ctx, c)
		if err == nil {
			err = checkDecision(c, d)
		}
		if err != nil {
			return Decision{}, memberError(c.Key, c.Unit, "", i, r, err)
		}
		if d.Outcome != Undecided {
			return d, nil
		}
	}
	return Decision{Outcome: Undecided}, nil
}

// Check returns the first verdict, among the members that are Gates, that
// is not Accept; Accept if there is none.
func (ch *ChainResolver) Check(ctx context.Context, c Change) (Verdict, error) {
	for i, r := range ch.rs {
		g, ok := r.(Gate)
		if !ok {
			continue
		}
		v, err := g.Check(ctx, c)
		if err != nil {
			return Verdict{}, memberError(c.Key, c.Unit, c.System, i, r, err)
		}
		if v.Outcome != Accept {
			return v, nil
		}
	}
	return Verdict{Outcome: Accept}, nil
}

// memberError wraps the error of chain member i in a *UnitError that names
// the member, unless a nested Chain or PerUnit has already named the unit.
func memberError(key, unit string, sys concord.SystemID, i int, r Resolver, err error) error {
	if _, ok := errors.AsType[*UnitError](err); ok {
		return err
	}
	return &UnitError{Key: key, Unit: unit, System: sys, Err: fmt.Errorf("chain member %d (%T): %w", i, r, err)}
}

// isNil reports whether r is nil or a nil Func.
func isNil(r Resolver) bool {
	f, isFunc := r.(Func)
	return r == nil || isFunc && f == nil
}

// PerUnitResolver routes each conflict to a resolver chosen by its unit; see
// [PerUnit]. It is also a [Gate].
type PerUnitResolver struct {
	m        map[string]Resolver
	fallback Resolver
}

// PerUnit returns a resolver that hands a [Conflict] to m[c.Unit], or to
// fallback for units m does not name. With a nil fallback, those units are
// Undecided. The Decision, including its Rule, is the routed resolver's; its
// errors are returned wrapped in a [*UnitError], and so is a Decision that
// cannot be carried out ([ErrBadDecision]).
//
// As a [Gate], Check routes a [Change] the same way, by Change.Unit: if the
// resolver it routes to implements Gate, its verdict is returned; otherwise
// the change is accepted. So a [SystemOfRecordResolver] keeps gating changes
// to the units it resolves.
//
// Keys of m are unit names: field names, group names or [RecordUnit]. PerUnit
// copies m; it panics if a value of m is nil (or a nil [Func]), or if
// fallback is a nil Func. A PerUnitResolver is safe for
// concurrent use if the resolvers it routes to are.
func PerUnit(m map[string]Resolver, fallback Resolver) *PerUnitResolver {
	for unit, r := range m {
		if isNil(r) {
			panic(fmt.Sprintf("resolve.PerUnit: resolver for unit %q is nil", unit))
		}
	}
	if f, ok := fallback.(Func); ok && f == nil {
		panic("resolve.PerUnit: fallback is a nil Func")
	}
	return &PerUnitResolver{m: maps.Clone(m), fallback: fallback}
}

func (p *PerUnitResolver) route(unit string) Resolver {
	if r, ok := p.m[unit]; ok {
		return r
	}
	return p.fallback
}

// Resolve asks the resolver for c.Unit, or the fallback.
func (p *PerUnitResolver) Resolve(ctx context.Context, c Conflict) (Decision, error) {
	r := p.route(c.Unit)
	if r == nil {
		return Decision{Outcome: Undecided}, nil
	}
	d, err := r.Resolve(ctx, c)
	if err == nil {
		err = checkDecision(c, d)
	}
	if err != nil {
		return Decision{}, unitError(c.Key, c.Unit, "", err)
	}
	return d, nil
}

// Check asks the resolver for c.Unit, or the fallback, if it is a Gate.
func (p *PerUnitResolver) Check(ctx context.Context, c Change) (Verdict, error) {
	g, ok := p.route(c.Unit).(Gate)
	if !ok {
		return Verdict{Outcome: Accept}, nil
	}
	v, err := g.Check(ctx, c)
	if err != nil {
		return Verdict{}, unitError(c.Key, c.Unit, c.System, err)
	}
	return v, nil
}

var (
	_ Resolver = (*ChainResolver)(nil)
	_ Gate     = (*ChainResolver)(nil)
	_ Resolver = (*PerUnitResolver)(nil)
	_ Gate     = (*PerUnitResolver)(nil)
)
