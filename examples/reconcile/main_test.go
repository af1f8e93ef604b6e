package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The tour runs, finds one difference of each kind, repairs what the rules
// settle, and writes a self-contained HTML page with the chart.
func TestTour(t *testing.T) {
	html := filepath.Join(t.TempDir(), "report.html")
	var out bytes.Buffer
	if err := run(context.Background(), &out, html); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{
		"| crm | 20 |", "| erp | 20 |",
		"21 keys, 15 equal on every side, 6 differences.",
		"| **all** | 2 | 2 | 1 | 1 |",
		`| C-005 | crm | credit\_limit from erp (system-of-record) |`,
		"| C-900 | (record) | nobody owns the record",
		"## Repairs applied: 4",
		"2 differences left:\n\n- C-011 name: in-flight\n- C-900 (record): missing\n",
		"Active customers: 15 in the CRM, 15 in the ERP\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	// C-017 holds the same number as an int and a float: not a difference.
	if strings.Contains(text, "C-017") {
		t.Errorf("C-017 reported:\n%s", text)
	}
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<svg id="chart"`, `data-field="credit_limit" data-class="conflicting" data-count="1"`, "</html>"} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "src=", "href="} {
		if bytes.Contains(page, []byte(bad)) {
			t.Errorf("HTML has %q: not self-contained", bad)
		}
	}
}

func TestUnwritableHTMLPath(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out, filepath.Join(t.TempDir(), "missing", "dir", "r.html")); err == nil {
		t.Fatal("run succeeded writing into a folder that does not exist")
	}
}
