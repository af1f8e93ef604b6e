package reconcile

import (
	"context"
	"fmt"

	"github.com/concordsync/concord"
)

// Counts is the outcome of [CountCheck].
type Counts struct {
	// Sides names the two systems, in order.
	Sides [2]concord.SystemID `json:"sides"`
	// Checked is how many live records each side returned; Selected how
	// many of them the filter selected.
	Checked  [2]int64 `json:"checked"`
	Selected [2]int64 `json:"selected"`
}

// Equal reports whether both sides selected the same number of records.
func (c Counts) Equal() bool { return c.Selected[0] == c.Selected[1] }

// Err returns an error wrapping [ErrNothingChecked] if a side returned no
// record, one wrapping [ErrCountMismatch] if the counts differ, else nil.
func (c Counts) Err() error {
	for i, n := range c.Checked {
		if n == 0 {
			return fmt.Errorf("reconcile: count check: %w: system %q returned no records", ErrNothingChecked, c.Sides[i])
		}
	}
	if !c.Equal() {
		return fmt.Errorf("reconcile: count check: %w: %q has %d, %q has %d (of %d and %d records)", ErrCountMismatch,
			c.Sides[0], c.Selected[0], c.Sides[1], c.Selected[1], c.Checked[0], c.Checked[1])
	}
	return nil
}

// CountCheck counts, on sides a and b, the live records whose canonical
// form filter selects (nil selects all), such as "active customers in the
// CRM and in marketing": one call, one scan per side, memory of one page.
// It returns the counts and [Counts.Err]: a side that returned no record
// is a failure ([ErrNothingChecked]), and different counts are
// [ErrCountMismatch]. A scan or transform failure is a [*SideError]; a
// panic in filter is a [*PanicError]. filter must not modify the record.
func CountCheck(ctx context.Context, a, b Side, filter func(concord.Record) bool) (Counts, error) {
	cfg := Config{Sides: []Side{a, b}}
	if err := cfg.validate(); err != nil {
		return Counts{}, err
	}
	r := newRun(cfg)
	var c Counts
	for i, s := range r.sides {
		c.Sides[i] = s.System
		err := r.scan(ctx, s, nil, func(_, canon concord.Record) error {
			c.Checked[i]++
			if filter == nil {
				c.Selected[i]++
				return nil
			}
			var keep bool
			if err := guard("filter", func() error { keep = filter(canon); return nil }); err != nil {
				return &SideError{System: s.System, Key: canon.Key, Err: err}
			}
			if keep {
				c.Selected[i]++
			}
			return nil
		})
		if err != nil {
			return Counts{}, err
		}
	}
	return c, c.Err()
}
