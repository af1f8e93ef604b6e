package main

// The machinery of the story: its clock, how it prints, and what it reports
// to its test. Nothing here is needed to use Concord.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/audit/alert"
	"github.com/concordsync/concord/connector"
	recsync "github.com/concordsync/concord/sync"
)

// outcome is what run reports besides its output, for its test.
type outcome struct {
	// alerts are the alerts the grouper passed on, in order.
	alerts []alert.Alert
	// cycles are the reports of every cycle, echo cycles included.
	cycles []*recsync.Report
	// storm is the warehouse's report of the rate-limited cycle, and
	// stormWait how long that cycle took in real time.
	storm     recsync.SystemReport
	stormWait time.Duration
	// deadLetters after the poison cycle; deadLettersAfter after the
	// replay.
	deadLetters, deadLettersAfter []recsync.DeadLetter
	// final holds every order in each system at the end, by key.
	final map[concord.SystemID]map[string]map[string]concord.Value
	// stats is Engine.Stats() at the end.
	stats recsync.Stats
	// events are every audit event of the story.
	events []audit.Event
}

func (w *world) heading(title string) {
	fmt.Fprintf(w.out, "\n== %s ==\n", title)
}

// edit is a person editing order key in system s at time at.
func (w *world) edit(at string, s concord.SystemID, key, who string, f map[string]concord.Value) {
	w.clock.Set(at)
	w.fakes[s].Edit(key, f)
	var parts []string
	for _, name := range fields {
		if v, ok := f[name]; ok {
			parts = append(parts, name+"="+quote(v))
		}
	}
	fmt.Fprintf(w.out, "%s  %-9s  %s: %s %s\n", at, s, key, who, strings.Join(parts, " "))
}

// cycle runs one engine cycle and prints what it did and what failed. A
// cycle's failures are no error of the story: they are what it shows. A
// cycle without failures is followed by another, which reads the writes
// back from each system's change feed: such an echo must be no edit and
// cause no write.
func (w *world) cycle(ctx context.Context) (*recsync.Report, error) {
	rep, err := w.runCycle(ctx)
	if err != nil || len(rep.Failures) > 0 {
		return rep, err
	}
	echo, err := w.runCycle(ctx)
	if err != nil {
		return rep, err
	}
	for _, id := range systems {
		if s := echo.Systems[id]; s.Edits != 0 || s.Writes != 0 || s.Failed != 0 {
			return rep, fmt.Errorf("cycle %d, reading back the writes of cycle %d: %s: %d edits, %d writes, %d failures; want none",
				echo.Cycle, rep.Cycle, id, s.Edits, s.Writes, s.Failed)
		}
	}
	return rep, nil
}

// runCycle runs one cycle and prints its report; it returns an error only
// if the cycle could not run at all.
func (w *world) runCycle(ctx context.Context) (*recsync.Report, error) {
	at := w.clock.Now().Format("15:04")
	rep, err := w.engine.RunCycle(ctx)
	var ce *recsync.CycleError
	if err != nil && !errors.As(err, &ce) {
		return rep, fmt.Errorf("cycle at %s: %w", at, err)
	}
	w.result.cycles = append(w.result.cycles, rep)
	fmt.Fprintf(w.out, "%s  cycle %-2d  %s\n", at, rep.Cycle, summary(rep))
	for _, line := range failures(rep) {
		fmt.Fprintf(w.out, "                   failed: %s\n", line)
	}
	w.printAlerts()
	return rep, nil
}

// summary says in a few words what a cycle did in each system.
func summary(rep *recsync.Report) string {
	var out []string
	for _, id := range systems {
		s := rep.Systems[id]
		var p []string
		for _, c := range []struct {
			n    int
			what string
		}{{s.Edits, "edit"}, {s.Retries, "retry"}, {s.Writes, "write"}, {s.Failed, "failure"}, {s.DeadLettered, "dead letter"}} {
			switch {
			case c.n == 1:
				p = append(p, "1 "+c.what)
			case c.n > 1 && c.what == "retry":
				p = append(p, fmt.Sprintf("%d retries", c.n))
			case c.n > 1:
				p = append(p, fmt.Sprintf("%d %ss", c.n, c.what))
			}
		}
		if len(p) == 0 {
			p = []string{"nothing to do"}
		}
		out = append(out, fmt.Sprintf("%s: %s", id, strings.Join(p, ", ")))
	}
	return strings.Join(out, "; ")
}

// failures lists a cycle's failures, one line per system, operation and
// error class, with the records concerned.
func failures(rep *recsync.Report) []string {
	type what struct {
		sys   concord.SystemID
		op    recsync.Op
		class connector.Class
	}
	var order []what
	keys := map[what][]string{}
	for _, f := range rep.Failures {
		k := what{f.System, f.Op, connector.Classify(f.Err)}
		if _, ok := keys[k]; !ok {
			order = append(order, k)
		}
		if f.Key != "" {
			keys[k] = append(keys[k], f.Key)
		}
	}
	var out []string
	for _, k := range order {
		line := fmt.Sprintf("%s %s (%s)", k.sys, k.op, k.class.String())
		if ks := keys[k]; len(ks) > 0 {
			slices.Sort(ks)
			line += " of " + strings.Join(ks, ", ")
		}
		out = append(out, line)
	}
	return out
}

// failuresSince counts the failures of the cycles from cycles[first] on.
func (w *world) failuresSince(first int) int {
	n := 0
	for _, r := range w.result.cycles[first:] {
		n += len(r.Failures)
	}
	return n
}

// printAlerts prints the alerts the grouper passed on since the last call,
// as a pager would show them.
func (w *world) printAlerts() {
	for _, a := range w.unprinted {
		w.printAlert(a)
	}
	w.unprinted = nil
}

func (w *world) printAlert(a alert.Alert) {
	line := fmt.Sprintf("         ALERT %s  %s  group %s", a.Time.Format("15:04"), a.Title(), a.GroupKey)
	if len(a.Keys) > 0 {
		line += "  records " + strings.Join(a.Keys, ", ")
	}
	fmt.Fprintln(w.out, line)
	fmt.Fprintf(w.out, "               %s\n", a.Message)
}

// printStats prints the engine's totals for each system.
func (w *world) printStats(title string) {
	st := w.engine.Stats()
	fmt.Fprintf(w.out, "%s (after %d cycles):\n", title, st.Cycles)
	tw := tabwriter.NewWriter(w.out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "  \twrites\tfailed writes\tfailure rate\tfailed reads\tretries\tdead-lettered\tresolved\tmean time to resolution\t")
	for _, id := range systems {
		s := st.Systems[id]
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%.1f%%\t%d\t%d\t%d\t%d\t%s\t\n", id, s.Writes, s.WriteFailures, 100*s.FailureRate,
			s.ReadFailures, s.Retries, s.DeadLettered, s.Resolved, s.MeanTimeToResolution)
	}
	_ = tw.Flush()
}

// printRecords prints every order in both systems side by side, records
// them in the outcome and checks that the systems agree.
func (w *world) printRecords() error {
	w.result.final = map[concord.SystemID]map[string]map[string]concord.Value{}
	var keys []string
	for _, id := range systems {
		w.result.final[id] = map[string]map[string]concord.Value{}
		for _, r := range w.fakes[id].Records() {
			w.result.final[id][r.Key] = r.Fields
			if !slices.Contains(keys, r.Key) {
				keys = append(keys, r.Key)
			}
		}
	}
	slices.Sort(keys)
	tw := tabwriter.NewWriter(w.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  order\tportal\twarehouse")
	var disagree []string
	for _, k := range keys {
		p, wh := w.result.final[portal][k], w.result.final[warehouse][k]
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", k, showRecord(p), showRecord(wh))
		if !concord.EqualValues(p, wh) {
			disagree = append(disagree, k)
		}
	}
	_ = tw.Flush()
	if len(disagree) > 0 {
		return fmt.Errorf("the systems disagree about %s", strings.Join(disagree, ", "))
	}
	fmt.Fprintf(w.out, "Both systems agree on all %d orders.\n", len(keys))
	return nil
}

// showRecord formats an order's fields in display order.
func showRecord(f map[string]concord.Value) string {
	if f == nil {
		return "(missing)"
	}
	var parts []string
	for _, name := range fields {
		if v, ok := f[name]; ok {
			parts = append(parts, fmt.Sprint(v))
		}
	}
	return strings.Join(parts, " | ")
}

// quote formats a value as a person typed it: strings quoted.
func quote(v concord.Value) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(v)
}
