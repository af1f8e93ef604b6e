package connector_test

import (
	"errors"
	"fmt"
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
		want connector.Class
	}{
		{nil, ""},
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

// TestClassIsATypedSentinel: each class is a comparable constant with a
// name, and the sentinel errors.Is matches through any wrapping, the way
// the error variables it replaced did.
func TestClassIsATypedSentinel(t *testing.T) {
	base := errors.New("boom")
	for _, tc := range []struct {
		class      connector.Class
		mark       func(error) error
		name, text string
	}{
		{connector.ErrTransient, connector.Transient, "transient", "transient failure"},
		{connector.ErrRateLimited, func(e error) error { return connector.RateLimited(e, 0) }, "rate_limited", "rate limited"},
		{connector.ErrConflict, connector.Conflict, "conflict", "precondition failed"},
		{connector.ErrPermanent, connector.Permanent, "permanent", "permanent failure"},
		{connector.ErrNotFound, func(error) error { return connector.NotFound("k") }, "not_found", "not found"},
	} {
		if tc.class.String() != tc.name || tc.class.Error() != tc.text || fmt.Sprint(tc.class) != tc.text {
			t.Errorf("class %q: String %q, Error %q, Sprint %q; want %q, %q, %q", tc.name, tc.class.String(), tc.class.Error(), fmt.Sprint(tc.class), tc.name, tc.text, tc.text)
		}
		err := fmt.Errorf("call: %w", fmt.Errorf("record: %w", tc.mark(base)))
		if !errors.Is(err, tc.class) || connector.Classify(err) != tc.class {
			t.Errorf("%s: errors.Is %v, Classify %v", tc.name, errors.Is(err, tc.class), connector.Classify(err))
		}
		var got connector.Class
		if !errors.As(err, &got) || got != tc.class {
			t.Errorf("%s: errors.As gives %q", tc.name, got)
		}
		// Marking with the class itself works as with the old variables.
		if c := connector.Classify(fmt.Errorf("x: %w", tc.class)); c != tc.class {
			t.Errorf("%s wrapped with %%w classifies as %v", tc.name, c)
		}
		for _, other := range []connector.Class{connector.ErrTransient, connector.ErrRateLimited, connector.ErrConflict, connector.ErrPermanent, connector.ErrNotFound} {
			if other != tc.class && errors.Is(err, other) {
				t.Errorf("a %s error matches %s", tc.name, other)
			}
		}
	}
	// A class with the same name from elsewhere is a different error:
	// errors.Is compares type and value.
	if errors.Is(errors.New("permanent"), connector.ErrPermanent) || errors.Is(errors.New("permanent failure"), connector.ErrPermanent) {
		t.Error("a plain error with the class's text matches it")
	}
	// An *Error with no class counts as transient and unwraps to its cause
	// only; its message does not panic.
	e := &connector.Error{Key: "k", Err: base}
	if connector.Classify(e) != connector.ErrTransient || !errors.Is(e, base) || e.Error() == "" {
		t.Errorf("zero-class error: Classify %v, Is(base) %v, %q", connector.Classify(e), errors.Is(e, base), e.Error())
	}
	if errors.Is(e, connector.Class("")) {
		t.Error("a zero-class error matches the zero class")
	}
	// Several classes in one chain: the most severe wins.
	joined := errors.Join(connector.Transient(base), connector.Permanent(base), connector.RateLimited(base, time.Second))
	if c := connector.Classify(joined); c != connector.ErrPermanent {
		t.Errorf("joined classes classify as %v; want permanent", c)
	}
}
