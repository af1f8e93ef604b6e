package reconcile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/transform"
)

// Class says why a difference exists, as far as the engine knows.
type Class string

// The classes, from the most to the least alarming.
const (
	// Conflicting: values differ and the engine has no record of why.
	Conflicting Class = "conflicting"
	// Missing: the record is on some sides only, and the engine has no
	// record of why.
	Missing Class = "missing"
	// Stale: the engine knows a side is behind canonical (a write to it
	// failed, was dead-lettered or is held).
	Stale Class = "stale"
	// InFlight: the engine is writing the record now, or will in this or
	// the next cycle.
	InFlight Class = "in-flight"
)

// Classes lists every Class in report order.
var Classes = []Class{Conflicting, Missing, Stale, InFlight}

// Difference is one thing that differs: a record missing on some sides
// (Field is [RecordField]) or one field whose values differ.
type Difference struct {
	// Key is the canonical key of the record.
	Key string `json:"key"`
	// Field is the canonical field, or RecordField.
	Field string `json:"field"`
	// Class says why, as far as the engine knows.
	Class Class `json:"class"`
	// Values holds each side's value of the field, for the sides that
	// have it (nil for a missing record). The values are copies.
	Values map[concord.SystemID]concord.Value `json:"values,omitempty"`
	// Present lists the sides that have the record (for RecordField) or
	// the field; Absent the sides that lack it, in side order.
	Present []concord.SystemID `json:"present"`
	Absent  []concord.SystemID `json:"absent,omitempty"`
	// Suggestions ranks replacements, per side, for a side's value that
	// the field's Config.Suggesters finds wrong (a misspelt country):
	// cleansing suggestions, best first.
	Suggestions map[concord.SystemID][]transform.Suggestion `json:"suggestions,omitempty"`
}

// Fix is one field of a [Repair]: which rule picked the winner.
type Fix struct {
	// Field is the canonical field, or RecordField (create the record).
	Field string `json:"field"`
	// Rule is RuleSystemOfRecord or RuleCanonical.
	Rule concord.Rule `json:"rule"`
	// Winner is the system whose value wins (the owner), empty when the
	// engine's canonical value wins.
	Winner concord.SystemID `json:"winner,omitempty"`
}

// Repair is one planned correction: system is to be written the winning
// values of Key's fields in Fixes.
type Repair struct {
	Key    string           `json:"key"`
	System concord.SystemID `json:"system"`
	Fixes  []Fix            `json:"fixes"`
}

// describe says what r fixes, for audit reasons.
func (r Repair) describe() string {
	parts := make([]string, len(r.Fixes))
	for i, f := range r.Fixes {
		if f.Winner == "" {
			parts[i] = fmt.Sprintf("%s from the canonical value", f.Field)
		} else {
			parts[i] = fmt.Sprintf("%s from %s (%s)", f.Field, f.Winner, f.Rule)
		}
	}
	return strings.Join(parts, "; ")
}

// Item is a difference the plan does not repair, and why.
type Item struct {
	Key    string `json:"key"`
	Field  string `json:"field"`
	Class  Class  `json:"class"`
	Reason string `json:"reason"`
}

// Plan says, per difference, which side should win and which systems to
// correct.
type Plan struct {
	// Repairs are the corrections, one per record and system to
	// correct, by key and then in side order.
	Repairs []Repair `json:"repairs"`
	// NeedsPerson lists differences no rule can settle.
	NeedsPerson []Item `json:"needs_person"`
	// InFlight lists differences the engine is settling already.
	InFlight []Item `json:"in_flight"`
}

// Report is the outcome of a check. Its JSON field names are stable.
type Report struct {
	// Sides names the systems compared, in order.
	Sides []concord.SystemID `json:"sides"`
	// Checked is how many live records were read from each side.
	Checked map[concord.SystemID]int64 `json:"checked"`
	// Keys is how many distinct keys (by hash) all sides hold together;
	// Matched how many of them are equal on every side.
	Keys    int64 `json:"keys"`
	Matched int64 `json:"matched"`
	// Settled counts keys that differed in the first pass and agreed in
	// the second: they changed while the check ran.
	Settled int64 `json:"settled"`
	// Differences lists every difference, by key, then field.
	Differences []Difference `json:"differences"`
	// ByClass counts differences by class; ByField by field and class
	// (RecordField for missing records). Every class has an entry.
	ByClass map[Class]int            `json:"by_class"`
	ByField map[string]map[Class]int `json:"by_field"`
	// Plan is the repair plan.
	Plan Plan `json:"plan"`
}

func (r *run) report(ix *index) *Report {
	rep := &Report{Checked: map[concord.SystemID]int64{}, Keys: ix.keys, Matched: ix.matched,
		ByClass: map[Class]int{}, ByField: map[string]map[Class]int{}}
	for i, s := range r.sides {
		rep.Sides = append(rep.Sides, s.System)
		rep.Checked[s.System] = ix.sides[i].records
	}
	for _, c := range Classes {
		rep.ByClass[c] = 0
	}
	return rep
}

func (rep *Report) add(d Difference) {
	rep.Differences = append(rep.Differences, d)
	rep.ByClass[d.Class]++
	m := rep.ByField[d.Field]
	if m == nil {
		m = map[Class]int{}
		for _, c := range Classes {
			m[c] = 0
		}
		rep.ByField[d.Field] = m
	}
	m[d.Class]++
}

// finish makes the empty lists non-nil, so that JSON shows [] not null.
func (rep *Report) finish() {
	if rep.Differences == nil {
		rep.Differences = []Difference{}
	}
	if rep.Plan.Repairs == nil {
		rep.Plan.Repairs = []Repair{}
	}
	if rep.Plan.NeedsPerson == nil {
		rep.Plan.NeedsPerson = []Item{}
	}
	if rep.Plan.InFlight == nil {
		rep.Plan.InFlight = []Item{}
	}
}

// Total returns the number of differences.
func (rep *Report) Total() int { return len(rep.Differences) }

// Err returns an error wrapping [ErrNothingChecked] that names every side
// that returned no record, or nil when every side returned some. A report
// whose check compared nothing must not read as a pass.
func (rep *Report) Err() error {
	var errs []error
	for _, s := range rep.Sides {
		if rep.Checked[s] == 0 {
			errs = append(errs, fmt.Errorf("reconcile: %w: system %q returned no records", ErrNothingChecked, s))
		}
	}
	if len(rep.Sides) == 0 {
		errs = append(errs, fmt.Errorf("reconcile: %w: no sides", ErrNothingChecked))
	}
	return errors.Join(errs...)
}

// Fields returns the fields that have differences, RecordField first, then
// by name.
func (rep *Report) Fields() []string {
	fs := slices.Sorted(maps.Keys(rep.ByField))
	if i := slices.Index(fs, RecordField); i > 0 {
		fs = append([]string{RecordField}, slices.Delete(fs, i, i+1)...)
	}
	return fs
}

// WriteJSON writes the report as indented JSON.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// MaxListed is how many differences, repairs and items the Markdown and
// HTML reports list; past it they say how many more there are (the counts
// are always complete, and the JSON lists everything).
const MaxListed = 1000

// WriteMarkdown writes the report as Markdown: the records checked, the
// counts by class and by field, then the differences and the plan (the
// first MaxListed of each).
func (rep *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Reconciliation: %s\n\n", mdCell(joinSystems(rep.Sides)))
	if err := rep.Err(); err != nil {
		fmt.Fprintf(&b, "**FAILED: %s**\n\n", mdCell(err.Error()))
	}
	b.WriteString("| system | records checked |\n|---|---:|\n")
	for _, s := range rep.Sides {
		fmt.Fprintf(&b, "| %s | %d |\n", mdCell(string(s)), rep.Checked[s])
	}
	fmt.Fprintf(&b, "\n%d keys, %d equal on every side, %d differences", rep.Keys, rep.Matched, rep.Total())
	if rep.Settled > 0 {
		fmt.Fprintf(&b, ", %d changed during the check", rep.Settled)
	}
	b.WriteString(".\n\n| field |")
	for _, c := range Classes {
		fmt.Fprintf(&b, " %s |", c)
	}
	b.WriteString("\n|---|" + strings.Repeat("---:|", len(Classes)) + "\n| **all** |")
	for _, c := range Classes {
		fmt.Fprintf(&b, " %d |", rep.ByClass[c])
	}
	b.WriteString("\n")
	for _, f := range rep.Fields() {
		fmt.Fprintf(&b, "| %s |", mdCell(f))
		for _, c := range Classes {
			fmt.Fprintf(&b, " %d |", rep.ByField[f][c])
		}
		b.WriteString("\n")
	}
	if len(rep.Differences) > 0 {
		b.WriteString("\n## Differences\n\n| key | field | class | values |\n|---|---|---|---|\n")
		for _, d := range rep.Differences[:min(len(rep.Differences), MaxListed)] {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", mdCell(d.Key), mdCell(d.Field), d.Class, mdCell(rep.describe(d)))
		}
		more(&b, len(rep.Differences))
	}
	p := rep.Plan
	fmt.Fprintf(&b, "\n## Repair plan\n\n%d repairs, %d need a person, %d in flight.\n", len(p.Repairs), len(p.NeedsPerson), len(p.InFlight))
	if len(p.Repairs) > 0 {
		b.WriteString("\n| key | correct | fields |\n|---|---|---|\n")
		for _, r := range p.Repairs[:min(len(p.Repairs), MaxListed)] {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", mdCell(r.Key), mdCell(string(r.System)), mdCell(r.describe()))
		}
		more(&b, len(p.Repairs))
	}
	if len(p.NeedsPerson) > 0 {
		b.WriteString("\n| needs a person | field | why |\n|---|---|---|\n")
		for _, it := range p.NeedsPerson[:min(len(p.NeedsPerson), MaxListed)] {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", mdCell(it.Key), mdCell(it.Field), mdCell(it.Reason))
		}
		more(&b, len(p.NeedsPerson))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func more(b *strings.Builder, n int) {
	if n > MaxListed {
		fmt.Fprintf(b, "\n… and %d more (see the JSON report).\n", n-MaxListed)
	}
}

// describe says what each side holds for d, in side order.
func (rep *Report) describe(d Difference) string {
	if d.Field == RecordField {
		return "only in " + joinSystems(d.Present) + "; not in " + joinSystems(d.Absent)
	}
	var parts []string
	for _, s := range rep.Sides {
		if v, ok := d.Values[s]; ok {
			part := string(s) + ": " + formatValue(v)
			if sg := d.Suggestions[s]; len(sg) > 0 {
				part += fmt.Sprintf(" (suggested: %s, score %.2f)", formatValue(sg[0].Value), sg[0].Score)
			}
			parts = append(parts, part)
		} else if slices.Contains(d.Absent, s) {
			parts = append(parts, string(s)+": (absent)")
		}
	}
	return strings.Join(parts, "; ")
}

func joinSystems(ss []concord.SystemID) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = string(s)
	}
	return strings.Join(parts, ", ")
}

// formatValue writes v as JSON (strings quoted), at most 200 bytes.
func formatValue(v concord.Value) string {
	b, err := json.Marshal(v)
	s := string(b)
	if err != nil {
		s = fmt.Sprintf("%v", v)
	}
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	}
	return s
}

// mdCell makes s safe in a Markdown table cell: one line, pipes and
// markup characters escaped.
func mdCell(s string) string {
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch r {
		case '\n', '\r', '\t':
			b.WriteByte(' ')
		case '|', '\\', '`', '*', '_', '<', '>', '[', ']', '#':
			b.WriteString(`\` + string(r))
		default:
			if r < 0x20 || r == 0x7f {
				b.WriteString(strconv.QuoteRune(r))
				continue
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}
