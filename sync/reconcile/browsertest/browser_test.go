package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/sync/reconcile"
)

// chromium returns the browser's path, skipping the test without one
// (failing it in CI).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no Chromium installed; .ci/run installs Debian's chromium package")
	}
	t.Skip("no Chromium installed (apt-get install chromium): the browser test is skipped")
	return ""
}

// report builds a check with differences of every class.
func report(t *testing.T) *reconcile.Report {
	t.Helper()
	a, b := fake.New("crm"), fake.New("erp")
	for i := range 30 {
		k := fmt.Sprintf("C-%02d", i)
		f := map[string]concord.Value{"name": k, "city": "Vienna", "limit": i}
		a.Edit(k, f)
		switch {
		case i%10 == 1:
			continue // missing in erp
		case i%10 == 2:
			f = map[string]concord.Value{"name": k, "city": "Graz", "limit": i}
		case i%10 == 3:
			f = map[string]concord.Value{"name": k, "city": "Linz", "limit": -i}
		}
		b.Edit(k, f)
	}
	know := reconcile.KnowledgeFunc(func(_ context.Context, keys []string) (map[string]reconcile.KeyState, error) {
		return map[string]reconcile.KeyState{
			"C-03": {Pending: map[concord.SystemID]bool{"erp": true}},
			"C-13": {Behind: map[concord.SystemID][]string{"erp": {"city", "limit"}}},
			"C-21": {Behind: map[concord.SystemID][]string{"erp": {reconcile.RecordField}}},
		}, nil
	})
	rep, err := reconcile.Run(context.Background(), reconcile.Config{
		Sides:     []reconcile.Side{{System: "crm", Scanner: a}, {System: "erp", Scanner: b}},
		Knowledge: know,
	})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

type bar struct {
	Field, Class string
	Count        int
	Width        float64
	Visible      bool
}

// The page renders in a real browser: the chart has one bar per field and
// class with differences, sized by count and visible, and a legend entry
// per class; the status and tables are there; a screenshot is taken.
func TestReportInChromium(t *testing.T) {
	exe := chromium(t)
	rep := report(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	f, err := os.Create(page)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteHTML(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1100, 900))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	defer cancelT()

	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+page), chromedp.WaitVisible("#chart")); err != nil {
		t.Fatalf("chromium: open the page: %v", err)
	}
	title := run(t, ctx, chromedp.Title())
	status := run(t, ctx, chromedp.Text("#status"))
	bars := run(t, ctx, chromedp.Evaluate[[]bar](`Array.from(document.querySelectorAll('#chart rect.bar')).map(r => {
		const b = r.getBoundingClientRect();
		return {Field: r.dataset.field, Class: r.dataset.class, Count: +r.dataset.count, Width: b.width,
			Visible: b.width > 0 && b.height > 0 && getComputedStyle(r).visibility === 'visible'};
	})`))
	legend := run(t, ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#chart g.legend')).map(g => g.dataset.class + ':' + g.textContent.trim())`))
	rows := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('#differences tr').length`))
	shot := run(t, ctx, chromedp.FullScreenshot(100))
	out := filepath.Join(dir, "report.png")
	if p := os.Getenv("RECONCILE_SCREENSHOT"); p != "" {
		out = p
	}
	if err := os.WriteFile(out, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", out, len(shot))
	if len(shot) < 10_000 {
		t.Errorf("screenshot of %d bytes: an empty page?", len(shot))
	}

	if title != "Reconciliation report" {
		t.Errorf("title %q", title)
	}
	if want := fmt.Sprintf("%d differences in %d keys.", rep.Total(), rep.Keys); status != want {
		t.Errorf("status %q; want %q", status, want)
	}
	if rows != rep.Total()+1 {
		t.Errorf("%d table rows; want %d differences and a header", rows, rep.Total())
	}
	want := map[string]int{}
	for field, byClass := range rep.ByField {
		for class, n := range byClass {
			if n > 0 {
				want[field+"/"+string(class)] = n
			}
		}
	}
	got := map[string]int{}
	widthPer := 0.0
	for _, b := range bars {
		got[b.Field+"/"+b.Class] = b.Count
		if !b.Visible {
			t.Errorf("bar %s/%s is not visible", b.Field, b.Class)
		}
		// Widths are proportional to counts.
		if w := b.Width / float64(b.Count); widthPer == 0 {
			widthPer = w
		} else if d := w - widthPer; d > 0.5 || d < -0.5 {
			t.Errorf("bar %s/%s: %.1f px for %d; others %.1f px per difference", b.Field, b.Class, b.Width, b.Count, widthPer)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("bars %v; want %v", got, want)
	}
	for _, class := range []string{"conflicting", "missing", "stale", "in-flight"} {
		if got["(record)/"+class]+got["city/"+class]+got["limit/"+class] == 0 {
			t.Errorf("no bar of class %s: the fixture should plant every class", class)
		}
	}
	if fmt.Sprint(legend) != "[conflicting:conflicting missing:missing stale:stale in-flight:in-flight]" {
		t.Errorf("legend %v", legend)
	}
}

// run runs one action, failing the test if it fails.
func run[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	return v
}
