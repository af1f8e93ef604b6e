package reconcile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/concordsync/concord"
)

func sampleReport(t testing.TB, keyA, keyB, field string, value concord.Value) *Report {
	t.Helper()
	a := scanner(rec(keyA, field, value, "n", 1), rec("same", "n", 1))
	b := scanner(rec(keyA, field, "other", "n", 2), rec(keyB, "n", 1), rec("same", "n", 1))
	cfg := two(a, b)
	cfg.Owners = map[string]concord.SystemID{"n": "b"}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// The JSON names are stable: a client reads them.
func TestJSONFieldNames(t *testing.T) {
	rep := sampleReport(t, "k1", "k2", "f", "v")
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	want := []string{"by_class", "by_field", "checked", "differences", "keys", "matched", "plan", "settled", "sides"}
	if diff := cmp.Diff(want, sortStrings(keys)); diff != "" {
		t.Errorf("top-level names (-want +got):\n%s", diff)
	}
	d := got["differences"].([]any)[0].(map[string]any)
	if d["key"] != "k1" || d["field"] != "f" || d["class"] != "conflicting" {
		t.Errorf("difference %v", d)
	}
	plan := got["plan"].(map[string]any)
	r := plan["repairs"].([]any)[0].(map[string]any)
	fix := r["fixes"].([]any)[0].(map[string]any)
	if r["key"] != "k1" || r["system"] != "a" || fix["field"] != "n" || fix["rule"] != "system-of-record" || fix["winner"] != "b" {
		t.Errorf("repair %v", r)
	}
	if got["checked"].(map[string]any)["a"] != 2.0 {
		t.Errorf("checked %v", got["checked"])
	}
	// An empty report lists [] rather than null.
	rep, err := Run(context.Background(), two(scanner(rec("k")), scanner(rec("k"))))
	if err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	_ = rep.WriteJSON(&buf)
	if strings.Contains(buf.String(), "null") {
		t.Errorf("empty report has null: %s", buf.String())
	}
}

func sortStrings(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

func TestMarkdown(t *testing.T) {
	rep := sampleReport(t, "k1", "k2", "f", "v")
	var buf bytes.Buffer
	if err := rep.WriteMarkdown(&buf); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	for _, want := range []string{
		"# Reconciliation: a, b", "| a | 2 |", "| b | 3 |",
		"3 keys, 1 equal on every side, 3 differences.",
		"| **all** | 2 | 1 | 0 | 0 |",
		"| (record) |", `| k1 | f | conflicting | a: "v"; b: "other" |`,
		"1 repairs, 2 need a person, 0 in flight.",
		"| k1 | a | n from b (system-of-record) |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
	checkMarkdownTables(t, md)
}

// checkMarkdownTables: every table row has the same number of cells as
// its header.
func checkMarkdownTables(t testing.TB, md string) {
	t.Helper()
	cells := func(line string) int { return len(cellBar.FindAllString(line, -1)) }
	want := 0
	for line := range strings.Lines(md) {
		line = strings.TrimRight(line, "\n")
		if !strings.HasPrefix(line, "|") {
			want = 0
			continue
		}
		if want == 0 {
			want = cells(line)
			continue
		}
		if got := cells(line); got != want {
			t.Errorf("table row has %d cell bars; header has %d: %q", got, want, line)
		}
	}
}

// Hostile keys, fields and values are escaped in HTML and Markdown.
func TestHostileStrings(t *testing.T) {
	evil := `<script>alert(1)</script>|x` + "\n# h"
	rep := sampleReport(t, evil, "<img src=x onerror=alert(1)>", `"><svg onload=alert(1)>`, evil)
	var html, md bytes.Buffer
	if err := rep.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	checkHTML(t, html.String())
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	checkMarkdownTables(t, md.String())
	if regexp.MustCompile(`(^|[^\\])<`).MatchString(md.String()) {
		t.Errorf("Markdown has a raw tag")
	}
}

var (
	cellBar = regexp.MustCompile(`(^|[^\\])\|`)
	htmlTag = regexp.MustCompile(`<(/?)([!a-zA-Z][a-zA-Z0-9]*)([^>]*)>`)
	badAttr = regexp.MustCompile(`(?i)\bon[a-z]+\s*=|\bsrc\s*=|\bhref\s*=|url\(`)
	quoted  = regexp.MustCompile(`"[^"]*"`)
)

// checkHTML: only the template's own tags, no event handler or link in
// any tag, so no script and no external asset.
func checkHTML(t testing.TB, page string) {
	t.Helper()
	allowed := map[string]bool{"!doctype": true, "html": true, "head": true, "meta": true, "title": true, "style": true,
		"body": true, "h1": true, "h2": true, "p": true, "table": true, "tr": true, "th": true, "td": true, "span": true,
		"svg": true, "g": true, "rect": true, "text": true}
	for _, tag := range htmlTag.FindAllStringSubmatch(page, -1) {
		name := strings.ToLower(tag[2])
		if !allowed[name] {
			t.Errorf("HTML has a <%s> tag: %q", name, tag[0])
		}
		if badAttr.MatchString(quoted.ReplaceAllString(tag[3], `""`)) {
			t.Errorf("HTML tag with a handler or link: %q", tag[0])
		}
	}
	low := strings.ToLower(page)
	for _, bad := range []string{"@import", "url(", "<script"} {
		if strings.Contains(low, bad) {
			t.Errorf("HTML contains %q", bad)
		}
	}
	for _, want := range []string{"<!doctype html>", `<svg id="chart"`, "</svg>", "</html>"} {
		if !strings.Contains(low, strings.ToLower(want)) {
			t.Errorf("HTML lacks %q", want)
		}
	}
}

func TestHTMLChart(t *testing.T) {
	rep := sampleReport(t, "k1", "k2", "f", "v")
	var buf bytes.Buffer
	if err := rep.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	checkHTML(t, page)
	bars := regexp.MustCompile(`<rect class="bar" data-field="([^"]*)" data-class="([^"]*)" data-count="(\d+)"`).FindAllStringSubmatch(page, -1)
	var got []string
	for _, b := range bars {
		got = append(got, b[1]+"/"+b[2]+"="+b[3])
	}
	want := []string{"(record)/missing=1", "f/conflicting=1", "n/conflicting=1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("bars (-want +got):\n%s", diff)
	}
	if !strings.Contains(page, `id="status">3 differences in 3 keys.`) {
		t.Errorf("status missing")
	}
	// No differences: a message in the chart, and the status says so.
	rep, err := Run(context.Background(), two(scanner(rec("k")), scanner(rec("k"))))
	if err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	_ = rep.WriteHTML(&buf)
	if !strings.Contains(buf.String(), `id="no-differences"`) || !strings.Contains(buf.String(), "All 1 keys agree") {
		t.Errorf("empty chart:\n%s", buf.String())
	}
	// A failed check says FAILED.
	rep, _ = Run(context.Background(), two(scanner(), scanner(rec("k"))))
	buf.Reset()
	_ = rep.WriteHTML(&buf)
	if !strings.Contains(buf.String(), "FAILED") {
		t.Error("a check of nothing is not shown as failed")
	}
	buf.Reset()
	_ = rep.WriteMarkdown(&buf)
	if !strings.Contains(buf.String(), "**FAILED") {
		t.Error("Markdown: a check of nothing is not shown as failed")
	}
}

// Long lists are cut in HTML and Markdown, never in the counts or JSON.
func TestListsCut(t *testing.T) {
	var a, b []concord.Record
	for i := range MaxListed + 5 {
		k := genKey(i)
		a = append(a, rec(k, "x", 1))
		b = append(b, rec(k, "x", 2))
	}
	cfg := two(scanner(a...), scanner(b...))
	cfg.PageSize = 100
	cfg.Owners = map[string]concord.SystemID{"x": "a"}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var md, html bytes.Buffer
	_ = rep.WriteMarkdown(&md)
	_ = rep.WriteHTML(&html)
	if !strings.Contains(md.String(), "… and 5 more") || !strings.Contains(html.String(), "… and 5 more") {
		t.Error("no note of the rows left out")
	}
	if strings.Count(md.String(), "| x | conflicting |") != MaxListed {
		t.Errorf("Markdown lists %d differences; want %d", strings.Count(md.String(), "| x | conflicting |"), MaxListed)
	}
	if rep.ByClass[Conflicting] != MaxListed+5 {
		t.Errorf("count %d", rep.ByClass[Conflicting])
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteErrors(t *testing.T) {
	rep := sampleReport(t, "k1", "k2", "f", "v")
	for name, f := range map[string]func() error{
		"json": func() error { return rep.WriteJSON(failWriter{}) },
		"md":   func() error { return rep.WriteMarkdown(failWriter{}) },
		"html": func() error { return rep.WriteHTML(failWriter{}) },
	} {
		if err := f(); err == nil {
			t.Errorf("%s: a failing writer is not reported", name)
		}
	}
}
