package connector_test

import (
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/concordsync/concord/connector"
)

var retryNow = time.Date(2026, 10, 21, 7, 28, 0, 0, time.UTC)

func TestRetryAfterSaturatesHugeDelays(t *testing.T) {
	maxSecs := int64(connector.RetryAfterCeiling / time.Second)
	for _, in := range []string{
		"9270000000",           // was negative
		"18446744074",          // was 290ms (wrapped)
		"9223372036854775807",  // int64 max
		"9223372036854775808",  // int64 max + 1
		"18446744073709551616", // uint64 max + 1
		strings.Repeat("9", 10000),
		strconv.FormatInt(maxSecs+1, 10),
		"000000000000000000000000000000" + strconv.FormatInt(maxSecs+1, 10),
	} {
		got, ok := connector.ParseRetryAfter(in, retryNow)
		if !ok || got != connector.RetryAfterCeiling {
			t.Errorf("ParseRetryAfter(%.30q) = %v, %v; want %v, true", in, got, ok, connector.RetryAfterCeiling)
		}
	}
	if got, ok := connector.ParseRetryAfter(strconv.FormatInt(maxSecs, 10), retryNow); !ok || got != connector.RetryAfterCeiling {
		t.Errorf("the maximum itself = %v, %v", got, ok)
	}
	if got, ok := connector.ParseRetryAfter("000120", retryNow); !ok || got != 2*time.Minute {
		t.Errorf("leading zeros = %v, %v; want 2m, true", got, ok)
	}
	// A date further ahead than the maximum saturates too, and one far in
	// the past is zero.
	if got, ok := connector.ParseRetryAfter("Fri, 31 Dec 9999 23:59:59 GMT", retryNow); !ok || got != connector.RetryAfterCeiling {
		t.Errorf("year 9999 = %v, %v", got, ok)
	}
	if got, ok := connector.ParseRetryAfter("Fri, 31 Dec 9999 23:59:59 GMT", time.Date(-200000000, 1, 1, 0, 0, 0, 0, time.UTC)); !ok || got != connector.RetryAfterCeiling {
		t.Errorf("from a hostile now = %v, %v", got, ok)
	}
	if got, ok := connector.ParseRetryAfter("Mon, 01 Jan 0001 00:00:00 GMT", retryNow); !ok || got != 0 {
		t.Errorf("year 1 = %v, %v", got, ok)
	}
}

func TestRetryAfterRejectsWhatIsNotDelaySeconds(t *testing.T) {
	for _, in := range []string{"+120", "-5", "-0", "1 2", "12 0", "1.5", "1e3", "0x10", "１２", "120s", "", " ", "\t", "1,2", "120\x00", "\n120"} {
		if got, ok := connector.ParseRetryAfter(in, retryNow); ok || got != 0 {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want 0, false", in, got, ok)
		}
	}
	for _, in := range []string{" 120", "120 ", "\t120\t"} { // optional white space around a field value
		if got, ok := connector.ParseRetryAfter(in, retryNow); !ok || got != 2*time.Minute {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want 2m, true", in, got, ok)
		}
	}
}

func TestRetryAfterReadsTheThreeHTTPDateForms(t *testing.T) {
	for _, in := range []string{
		"Wed, 21 Oct 2026 07:30:00 GMT",      // IMF-fixdate
		"Wednesday, 21-Oct-26 07:30:00 GMT",  // RFC 850
		"Wed Oct 21 07:30:00 2026",           // asctime
		" Wed, 21 Oct 2026 07:30:00 GMT ",    // with white space around
		"Wed Oct 21 07:30:00 2026" + "\t",    // asctime, tab after
		"Sun, 21 Oct 2026 07:30:00 GMT",      // a wrong weekday is not checked (as net/http does not)
		"Wednesday, 21-Oct-26 07:30:00 GMT ", // RFC 850 with a space after
	} {
		got, ok := connector.ParseRetryAfter(in, retryNow)
		if !ok || got != 2*time.Minute {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want 2m, true", in, got, ok)
		}
	}
	if got, ok := connector.ParseRetryAfter("Wed Oct  7 07:30:00 2026", time.Date(2026, 10, 7, 7, 29, 0, 0, time.UTC)); !ok || got != time.Minute {
		t.Errorf("asctime with a padded day = %v, %v", got, ok)
	}
	for _, in := range []string{"Wed, 21 Oct 2026 07:30:00 PST", "Wed, 21 Oct 2026 07:30:00", "2026-10-21T07:30:00Z", "Wed, 32 Oct 2026 07:30:00 GMT"} {
		if got, ok := connector.ParseRetryAfter(in, retryNow); ok {
			t.Errorf("ParseRetryAfter(%q) = %v, true; want false", in, got)
		}
	}
}

// TestRetryAfterHTTPDateEdges: calendar and syntax edges of the three
// HTTP-date forms, each checked against net/http's reading of the same text
// (the package no longer uses it, so the test keeps them in agreement:
// where net/http is liberal, as RFC 9110 asks recipients to be, so are we).
func TestRetryAfterHTTPDateEdges(t *testing.T) {
	now := time.Date(2028, 2, 28, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration // when ok
		ok   bool
	}{
		{"Tue, 29 Feb 2028 00:00:00 GMT", 24 * time.Hour, true},           // a leap day
		{"Tuesday, 29-Feb-28 00:00:00 GMT", 24 * time.Hour, true},         // RFC 850: 28 is 2028
		{"Tue Feb 29 00:00:00 2028", 24 * time.Hour, true},                // asctime
		{"Mon, 28 Feb 2028 00:00:01 GMT", time.Second, true},              // one second ahead
		{"Sun, 27 Feb 2028 23:59:59 GMT", 0, true},                        // one second in the past
		{"Thu, 01 Jan 1970 00:00:00 GMT", 0, true},                        // the epoch
		{"Sun, 29 Feb 2027 00:00:00 GMT", 0, false},                       // no leap day in 2027
		{"Mon, 28 Feb 2028 24:00:00 GMT", 0, false},                       // hour 24
		{"Mon, 28 Feb 2028 23:60:00 GMT", 0, false},                       // minute 60
		{"Mon, 28 Feb 2028 00:00:00 gmt", 0, false},                       // the zone is case-sensitive
		{"Mon, 28 feb 2028 00:00:00 GMT", 0, true},                        // the month is not (as in net/http)
		{"Mon, 28 Feb 2028 00:00:00 UTC", 0, false},                       // only GMT
		{"Mon, 28 Feb 2028 00:00:00 +0000", 0, false},                     // no numeric zone
		{"Mon, 28 Feb 28 00:00:00 GMT", 0, false},                         // IMF-fixdate has four digits
		{"Mon,  28 Feb 2028 00:00:00 GMT", 0, true},                       // two spaces are read, as net/http does
		{"Mon, 28 Feb 2028 00:00:00 GMT trailing", 0, false},              // trailing text
		{"Mon, 28 Feb 2028 00:00:00\tGMT", 0, false},                      // a tab inside
		{"Mon Feb 28 00:00:00 2028 GMT", 0, false},                        // asctime has no zone
		{"Monday, 28-Feb-2028 00:00:00 GMT", 0, false},                    // RFC 850 has two digits
		{"Mon, 28 Feb 2028 00:00:00 GMT\x00", 0, false},                   // a NUL after
		{"Mon, 28 Feb 2028 0:00:00 GMT", 0, true},                         // an unpadded hour too
		{"Mon, 28 Feb 2028 00:00:00.5 GMT", 500 * time.Millisecond, true}, // and a fraction of a second
	} {
		got, ok := connector.ParseRetryAfter(tc.in, now)
		if ok != tc.ok || got != tc.want {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
		ht, herr := http.ParseTime(tc.in)
		if (herr == nil) != tc.ok {
			t.Errorf("net/http reads %q as %v, %v; the table says ok = %v", tc.in, ht, herr, tc.ok)
		}
	}
}

// FuzzParseRetryAfter: never panics; the wait is never negative nor above
// RetryAfterCeiling, and zero when not ok; delay-seconds agree with exact
// arithmetic; HTTP dates agree with net/http's parser.
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"120", "0", "+120", "-5", "9270000000", "18446744074", "9223372036854775808", "1 2", " 120 ", "",
		"Wed, 21 Oct 2026 07:30:00 GMT", "Wednesday, 21-Oct-26 07:30:00 GMT", "Wed Oct 21 07:30:00 2026", "Fri, 31 Dec 9999 23:59:59 GMT",
		"Mon, 01 Jan 0001 00:00:00 GMT", "\xff", "１２"} {
		f.Add(s, int64(0))
	}
	f.Fuzz(func(t *testing.T, in string, nowSec int64) {
		now := retryNow.Add(time.Duration(nowSec%(1<<40)) * time.Second)
		got, ok := connector.ParseRetryAfter(in, now)
		if got < 0 || got > connector.RetryAfterCeiling || (!ok && got != 0) {
			t.Fatalf("ParseRetryAfter(%q) = %v, %v", in, got, ok)
		}
		if again, ok2 := connector.ParseRetryAfter(in, now); again != got || ok2 != ok {
			t.Fatalf("not deterministic: %v, %v then %v, %v", got, ok, again, ok2)
		}
		v := strings.Trim(in, " \t")
		if v != "" && strings.Trim(v, "0123456789") == "" {
			n, _ := new(big.Int).SetString(v, 10)
			want := connector.RetryAfterCeiling
			if n.Cmp(big.NewInt(int64(connector.RetryAfterCeiling/time.Second))) <= 0 {
				want = time.Duration(n.Int64()) * time.Second
			}
			if !ok || got != want {
				t.Fatalf("ParseRetryAfter(%q) = %v, %v; want %v, true", in, got, ok, want)
			}
			return
		}
		if v != "" && v[0] >= '0' && v[0] <= '9' {
			if ok {
				t.Fatalf("ParseRetryAfter(%q) = %v, true; delay-seconds are digits only", in, got)
			}
			return
		}
		ht, herr := http.ParseTime(v)
		if herr == nil && strings.HasSuffix(v, "GMT") == strings.Contains(v, ",") { // net/http also reads any zone name in RFC 850
			want := max(min(ht.Sub(now), connector.RetryAfterCeiling), 0)
			if !ok || got != want {
				t.Fatalf("ParseRetryAfter(%q) = %v, %v; net/http reads %v, want %v", in, got, ok, ht, want)
			}
		}
		if ok && herr != nil {
			t.Fatalf("ParseRetryAfter(%q) = %v, true; net/http refuses it: %v", in, got, herr)
		}
	})
}
