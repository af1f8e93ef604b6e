package reconcile

import (
	"context"
	"fmt"
	"slices"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/transform"
)

// Side is one system in a check.
type Side struct {
	// System names the side in reports and repairs; it must be unique
	// within a check.
	System concord.SystemID
	// Scanner reads every live record of the system (see
	// [connector.Scanner]). It is called from one goroutine. If it is
	// also a [connector.ScanStarter], its estimate sizes the index.
	Scanner connector.Scanner
	// Transformer maps the system's records to canonical form (the
	// inbound transform of the pipeline); nil means the system's records
	// are canonical already. It must not modify its input.
	Transformer transform.Transformer
}

// Config says what to compare and how to judge it. The zero values of the
// optional fields are useful.
type Config struct {
	// Sides are the systems compared: two or more.
	Sides []Side
	// Fields are the canonical fields compared; nil compares every field
	// any side reports. A field absent from a record (not reported)
	// differs from a field present and empty (nil).
	Fields []string
	// Owners names the system of record of fields (as in
	// resolve.SystemOfRecord); [RecordField] names the owner of a
	// record's existence. An owner that is not one of the sides is
	// ignored.
	Owners map[string]concord.SystemID
	// Knowledge is the engine's knowledge of records, for classes and
	// canonical winners; nil: none.
	Knowledge Knowledge
	// PageSize is the limit passed to Scan; 0 means 500.
	PageSize int
	// KnowledgeBatch is the most keys per Knowledge.Known call; 0 means
	// 1000.
	KnowledgeBatch int
	// Suggesters, by canonical field, rank replacements for a value that
	// looks wrong (a *suggest.Index of ISO names or allowed values): each
	// side's value of a differing field is offered to it, and its
	// suggestions go in the Difference (not for Sensitive fields).
	Suggesters map[string]transform.Suggester
	// Sensitive lists fields whose values the report shows as
	// [Redacted] (the comparison and the plan still use them): the
	// engine's Config.Sensitive.
	Sensitive []string
}

const (
	defaultPageSize       = 500
	defaultKnowledgeBatch = 1000
)

func (c *Config) validate() error {
	if len(c.Sides) < 2 {
		return fmt.Errorf("%w: %d sides; a check needs two or more", ErrConfig, len(c.Sides))
	}
	seen := map[concord.SystemID]bool{}
	for i, s := range c.Sides {
		switch {
		case s.System == "":
			return fmt.Errorf("%w: side %d has no System name", ErrConfig, i+1)
		case seen[s.System]:
			return fmt.Errorf("%w: system %q is named twice", ErrConfig, s.System)
		case s.Scanner == nil:
			return fmt.Errorf("%w: system %q has no Scanner", ErrConfig, s.System)
		}
		seen[s.System] = true
	}
	fields := map[string]bool{}
	for _, f := range c.Fields {
		if f == "" || f == RecordField || fields[f] {
			return fmt.Errorf("%w: Fields: %q is empty, reserved or listed twice", ErrConfig, f)
		}
		fields[f] = true
	}
	if c.PageSize < 0 || c.KnowledgeBatch < 0 {
		return fmt.Errorf("%w: negative PageSize or KnowledgeBatch", ErrConfig)
	}
	return nil
}

// Run compares the sides of cfg (see the package documentation for the
// algorithm) and returns the report. It reads each side twice at most and
// writes nothing. Cancelling ctx stops the scans and returns ctx.Err().
//
// A failure (a scan, a transform, the knowledge) returns a nil report and
// an error naming the system and record (a [*SideError] wrapping
// [ErrScan], [ErrTransform] or [ErrDuplicateKey], or an error wrapping
// [ErrKnowledge]); a panic in user code is a [*PanicError]. When the
// check itself succeeded but some side returned no record, Run returns the
// report and its [Report.Err], which wraps [ErrNothingChecked].
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := newRun(cfg)
	ix, err := r.index(ctx)
	if err != nil {
		return nil, err
	}
	marked := r.merge(ix)
	rep := r.report(ix)
	if len(marked) > 0 {
		details, err := r.detail(ctx, marked, ix)
		if err != nil {
			return nil, err
		}
		if err := r.judge(ctx, rep, details); err != nil {
			return nil, err
		}
	}
	rep.finish()
	redact(rep, cfg.Sensitive)
	return rep, rep.Err()
}

// Redacted replaces the values of sensitive fields (Config.Sensitive) in a
// report.
const Redacted = "[redacted]"

// redact replaces the values of sensitive fields in rep's differences,
// once the plan (which compares them) is made.
func redact(rep *Report, sensitive []string) {
	for i := range rep.Differences {
		d := &rep.Differences[i]
		if !slices.Contains(sensitive, d.Field) {
			continue
		}
		for s, v := range d.Values {
			if v != nil {
				d.Values[s] = Redacted
			}
		}
	}
}

// run is one check in progress.
type run struct {
	cfg    Config
	sides  []Side
	page   int
	batch  int
	fields []string // nil: all
	owners map[string]int
}

func newRun(cfg Config) *run {
	r := &run{cfg: cfg, sides: slices.Clone(cfg.Sides), page: cfg.PageSize, batch: cfg.KnowledgeBatch,
		fields: slices.Clone(cfg.Fields), owners: map[string]int{}}
	if r.page == 0 {
		r.page = defaultPageSize
	}
	if r.batch == 0 {
		r.batch = defaultKnowledgeBatch
	}
	for f, sys := range cfg.Owners {
		if i := slices.IndexFunc(r.sides, func(s Side) bool { return s.System == sys }); i >= 0 {
			r.owners[f] = i
		}
	}
	return r
}

// scan reads every page of side s and calls each with every live record
// in canonical form; raw is the record as the system returned it. When
// want is not nil, records whose raw key it rejects are skipped before
// they are transformed.
func (r *run) scan(ctx context.Context, s Side, want func(rawKey string) bool, each func(raw, canon concord.Record) error) error {
	var cur connector.Cursor
	for page := 1; ; page++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		var b connector.Batch
		err := guard("Scan", func() (err error) {
			b, err = s.Scanner.Scan(ctx, cur, r.page)
			return err
		})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return &SideError{System: s.System, Err: fmt.Errorf("%w: page %d (after cursor %q): %w", ErrScan, page, cur, err)}
		}
		for _, raw := range b.Records {
			if raw.Deleted {
				continue // Scan returns live records only; a deleted one is absent
			}
			if want != nil && !want(raw.Key) {
				continue
			}
			canon := raw
			if s.Transformer != nil {
				err := guard("Transform", func() (err error) {
					canon, err = s.Transformer.Transform(ctx, raw)
					return err
				})
				if err != nil {
					return &SideError{System: s.System, Key: raw.Key, Err: fmt.Errorf("%w: %w", ErrTransform, err)}
				}
			}
			if canon.Deleted {
				continue
			}
			if canon.Key == "" {
				return &SideError{System: s.System, Key: raw.Key, Err: fmt.Errorf("%w: canonical record has no key", ErrTransform)}
			}
			if err := each(raw, canon); err != nil {
				return err
			}
		}
		if !b.More {
			return nil
		}
		if b.Next == cur {
			return &SideError{System: s.System, Err: fmt.Errorf("%w: page %d says More but its cursor %q did not advance", ErrScan, page, cur)}
		}
		cur = b.Next
	}
}
