package patterns

import (
	"math"
	"testing"
	"time"
)

func TestPct(t *testing.T) {
	for _, tc := range []struct {
		x    float64
		want string
	}{
		{0, "0%"}, {-1, "0%"}, {0.0004, "<0.1%"}, {0.001, "0.1%"}, {0.02, "2%"}, {0.036, "3.6%"},
		{0.0996, "10%"}, {0.1, "10%"}, {0.874, "87%"}, {0.994, "99%"}, {0.9951, "99.5%"},
		{0.9996, ">99.9%"}, {1, "100%"}, {2, "100%"},
	} {
		if got := pct(tc.x); got != tc.want {
			t.Errorf("pct(%v) = %s, want %s", tc.x, got, tc.want)
		}
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"EU": "EU", "a-b_c.d/e@f:g": "a-b_c.d/e@f:g", "": `""`, "a b": `"a b"`,
		"x\ny": `"x\ny"`, "é": `"é"`, `a"b`: `"a\"b"`, "a=b": `"a=b"`,
	} {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestWilson(t *testing.T) {
	// Reference: 50 of 100 at z = 1.96 is [0.4038, 0.5962].
	lo, hi := wilson(50, 100, 1.96)
	if math.Abs(lo-0.4038) > 1e-4 || math.Abs(hi-0.5962) > 1e-4 {
		t.Errorf("wilson(50, 100) = %v, %v", lo, hi)
	}
	if lo, hi := wilson(0, 0, 1.96); lo != 0 || hi != 1 {
		t.Errorf("wilson(0, 0) = %v, %v", lo, hi)
	}
	if lo, hi := wilson(0, 10, 1.96); lo != 0 || hi <= 0 || hi >= 1 {
		t.Errorf("wilson(0, 10) = %v, %v", lo, hi)
	}
	if lo, hi := wilson(10, 10, 1.96); hi != 1 || lo <= 0 || lo >= 1 {
		t.Errorf("wilson(10, 10) = %v, %v", lo, hi)
	}
}

func TestTextForms(t *testing.T) {
	p := func(items ...Item) *Pattern {
		return &Pattern{Items: items, Failures: 412, Total: 453, Rate: 412.0 / 453, BaseRate: 0.02, Share: 0.87,
			ErrorClasses: []ClassCount{{"permanent", 400}, {"", 6}, {"transient", 4}, {"x", 2}}}
	}
	const tail = " (rate 91% against a base rate of 2%; 412 of 453 attempts failed; errors: permanent 97%, unclassified 1.5%, transient 1%, ...)"
	for _, tc := range []struct {
		p    *Pattern
		loc  *time.Location
		want string
	}{
		{p(Item{AttrSystem, "warehouse"}, Item{AttrDirection, "write"}, Item{AttrHour, "03"}, Item{AttrDay, "1"}, Item{"region", "EU"}), time.UTC,
			"87% of failures are warehouse writes between 03:00 and 04:00 on day 1, for region=EU" + tail},
		{p(Item{AttrDirection, "read"}, Item{AttrWeekday, "Monday"}), time.UTC, "87% of failures are reads on a Monday" + tail},
		{p(Item{AttrField, "email"}, Item{AttrDay, "31"}, Item{AttrWeekday, "Friday"}), time.UTC,
			"87% of failures are attempts touching field email on day 31, a Friday" + tail},
		{p(Item{AttrSystem, "crm"}, Item{AttrHour, "23"}), time.FixedZone("CET", 3600),
			"87% of failures are crm attempts between 23:00 and 24:00 (CET)" + tail},
		{p(Item{"region", "EU"}, Item{"tier", "gold"}, Item{"zone", "b"}), time.UTC,
			"87% of failures are attempts, for region=EU, tier=gold and zone=b" + tail},
		{p(Item{AttrSystem, "a\nb"}, Item{AttrField, "x y"}, Item{"re gion", "E\"U"}), time.UTC,
			`87% of failures are "a\nb" attempts touching field "x y", for "re gion"="E\"U"` + tail},
	} {
		if got := text(tc.p, tc.loc); got != tc.want {
			t.Errorf("text\n got %s\nwant %s", got, tc.want)
		}
	}
}
