package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
)

// textLogger logs to buf in text form, without the time.
func textLogger(buf *bytes.Buffer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	}))
}

func TestSlogText(t *testing.T) {
	tests := []struct {
		name string
		ev   audit.Event
		want string
	}{
		{
			name: "edit with from and to",
			ev: audit.Event{
				Time: t0, Kind: audit.EditObserved, Cycle: 7, System: "portal", Key: "cust 1", Unit: "address",
				Fields: []string{"city", "street"}, Version: v1,
				From: map[string]concord.Value{"street": "Main St 1", "city": "Oslo"},
				To:   map[string]concord.Value{"street": "Main St 2", "city": nil},
			},
			want: `level=INFO msg=edit.observed key="cust 1" system=portal unit=address fields="[city street]" ` +
				`version={1:2,3:1} cycle=7 from.city=Oslo from.street="Main St 1" to.city=<nil> to.street="Main St 2"`,
		},
		{
			name: "write failure at warn",
			ev: audit.Event{
				Kind: audit.WriteFailed, System: "warehouse", Key: "c2", Fields: []string{"addr"},
				Error: "503 Service Unavailable", ErrorClass: "transient",
			},
			want: `level=WARN msg=write.failed key=c2 system=warehouse fields=[addr] error="503 Service Unavailable" error_class=transient`,
		},
		{
			name: "held at warn with rule and reason",
			ev:   audit.Event{Kind: audit.ConflictHeld, Key: "c3", Unit: "iban", Rule: "approval", Reason: "sensitive field"},
			want: `level=WARN msg=conflict.held key=c3 unit=iban rule=approval reason="sensitive field"`,
		},
		{
			name: "read failure at warn",
			ev:   audit.Event{Kind: audit.ReadFailed, System: "crm", Error: "timeout"},
			want: `level=WARN msg=read.failed system=crm error=timeout`,
		},
		{
			name: "quarantine at warn",
			ev:   audit.Event{Kind: audit.RecordQuarantined, System: "crm", Key: "x", Reason: "no key"},
			want: `level=WARN msg=record.quarantined key=x system=crm reason="no key"`,
		},
		{
			name: "delete",
			ev:   audit.Event{Kind: audit.MergeDecided, Key: "c4", Unit: "(record)", Deleted: true, Version: v2},
			want: `level=INFO msg=merge.decided key=c4 unit=(record) version={2:1} deleted=true`,
		},
		{
			name: "conflict candidates",
			ev: audit.Event{
				Kind: audit.ConflictDetected, Key: "c5", Unit: "limit",
				Candidates: []audit.Candidate{
					{System: "crm", Canonical: true, Version: v1, Values: map[string]concord.Value{"limit": json.Number("100")}},
					{System: "erp", Version: v2, Deleted: true},
				},
			},
			want: `level=INFO msg=conflict.detected key=c5 unit=limit candidates.0.system=crm candidates.0.canonical=true ` +
				`candidates.0.version={1:2,3:1} candidates.0.values.limit=100 candidates.1.system=erp ` +
				`candidates.1.version={2:1} candidates.1.deleted=true`,
		},
		{
			name: "bare event",
			ev:   audit.Event{Kind: audit.WriteSucceeded},
			want: `level=INFO msg=write.succeeded`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			events := []audit.Event{tt.ev}
			before := cloneEvents(events)
			require.NoError(t, audit.Slog(textLogger(&buf, slog.LevelDebug)).Emit(context.Background(), events), "Emit")
			requireEvents(t, events, before)
			if diff := cmp.Diff(tt.want+"\n", buf.String()); diff != "" {
				t.Errorf("log output (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSlogJSONUsesEventTime(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil)).With("pipeline", "crm-erp")
	ev := audit.Event{
		Time: t0, Kind: audit.MergeDecided, Key: "c1", Unit: "price",
		To: map[string]concord.Value{"price": json.Number("9.90"), "tags": []string{"x"}},
	}
	require.NoError(t, audit.Slog(logger).Emit(context.Background(), []audit.Event{ev}), "Emit")
	want := `{"time":"2025-03-14T09:26:53.589793238Z","level":"INFO","msg":"merge.decided","pipeline":"crm-erp",` +
		`"key":"c1","unit":"price","to":{"price":9.90,"tags":["x"]}}` + "\n"
	if diff := cmp.Diff(want, buf.String()); diff != "" {
		t.Errorf("log output (-want +got):\n%s", diff)
	}
}

func TestSlogSkipsDisabledLevels(t *testing.T) {
	var buf bytes.Buffer
	events := []audit.Event{
		{Kind: audit.WriteAttempted, Key: "a"},
		{Kind: audit.WriteFailed, Key: "a"},
		{Kind: audit.WriteSucceeded, Key: "b"},
	}
	require.NoError(t, audit.Slog(textLogger(&buf, slog.LevelWarn)).Emit(context.Background(), events), "Emit")
	if diff := cmp.Diff("level=WARN msg=write.failed key=a\n", buf.String()); diff != "" {
		t.Errorf("log output (-want +got):\n%s", diff)
	}
}

// failingHandler fails to handle records whose key attribute is "bad".
type failingHandler struct {
	slog.Handler
	err error
}

func (h failingHandler) Handle(ctx context.Context, r slog.Record) error {
	bad := false
	r.Attrs(func(a slog.Attr) bool {
		bad = bad || (a.Key == "key" && a.Value.String() == "bad")
		return true
	})
	if bad {
		return h.err
	}
	return h.Handler.Handle(ctx, r)
}

func TestSlogHandlerErrorNamesEventAndContinues(t *testing.T) {
	errHandler := errors.New("handler broke")
	var buf bytes.Buffer
	logger := slog.New(failingHandler{Handler: textLogger(&buf, slog.LevelInfo).Handler(), err: errHandler})
	events := []audit.Event{
		{Kind: audit.EditObserved, Key: "ok-1"},
		{Kind: audit.EditObserved, System: "crm", Key: "bad"},
		{Kind: audit.EditObserved, Key: "ok-2"},
	}
	err := audit.Slog(logger).Emit(context.Background(), events)
	var ee *audit.EventError
	if !errors.As(err, &ee) || ee.Index != 1 || ee.Key != "bad" || ee.System != "crm" {
		t.Fatalf("Emit error = %#v, want an *audit.EventError for event 1 (key bad, system crm)", err)
	}
	if !errors.Is(err, errHandler) {
		t.Errorf("Emit error %v does not wrap %v", err, errHandler)
	}
	want := "level=INFO msg=edit.observed key=ok-1\nlevel=INFO msg=edit.observed key=ok-2\n"
	if diff := cmp.Diff(want, buf.String()); diff != "" {
		t.Errorf("log output (-want +got):\n%s", diff)
	}
}

func TestConstructorsRejectNil(t *testing.T) {
	tests := []struct {
		name string
		f    func()
		want string
	}{
		{"Slog", func() { audit.Slog(nil) }, "audit: Slog: nil logger"},
		{"JSONLines", func() { audit.JSONLines(nil) }, "audit: JSONLines: nil writer"},
		{"Multi", func() { audit.Multi(audit.Discard, nil) }, "audit: Multi: sink 1 is nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				got, _ := recover().(string)
				if !strings.Contains(got, tt.want) {
					t.Errorf("panic = %q, want %q", got, tt.want)
				}
			}()
			tt.f()
		})
	}
}
