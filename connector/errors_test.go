package connector_test

import (
	"errors"
	"testing"
	"time"

	"github.com/concordsync/concord/connector"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 10, 21, 7, 28, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"120", 2 * time.Minute, true},
		{" 0 ", 0, true},
		{"Wed, 21 Oct 2026 07:30:00 GMT", 2 * time.Minute, true},
		{"Wed, 21 Oct 2026 07:00:00 GMT", 0, true}, // in the past
		{"-5", 0, false},
		{"soon", 0, false},
		{"", 0, false},
	} {
		got, ok := connector.ParseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestClassify(t *testing.T) {
	base := errors.New("boom")
	for _, tc := range []struct {
		err  error
		want error
	}{
		{nil, nil},
		{base, connector.ErrTransient},
		{connector.Permanent(base), connector.ErrPermanent},
		{connector.Conflict(base), connector.ErrConflict},
		{connector.NotFound("k"), connector.ErrNotFound},
		{connector.RateLimited(base, time.Second), connector.ErrRateLimited},
	} {
		if got := connector.Classify(tc.err); got != tc.want {
			t.Errorf("Classify(%v) = %v; want %v", tc.err, got, tc.want)
		}
	}
	err := connector.RateLimited(base, 3*time.Second)
	if d, ok := connector.RetryAfter(err); !ok || d != 3*time.Second {
		t.Errorf("RetryAfter = %v, %v", d, ok)
	}
	if !errors.Is(err, base) || !errors.Is(err, connector.ErrRateLimited) || !connector.Retryable(err) {
		t.Errorf("rate-limited error does not unwrap to its cause and class")
	}
	if connector.Retryable(connector.Permanent(base)) {
		t.Error("a permanent error is retryable")
	}
}
