package alert_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/concordsync/concord/audit/alert"
)

func TestTitleAndText(t *testing.T) {
	for _, tc := range []struct {
		name      string
		a         alert.Alert
		wantTitle string
		wantText  string
	}{
		{"empty", alert.Alert{}, "[ALERT] failure", "[ALERT] failure\n"},
		{"one occurrence", alert.Alert{Severity: alert.Warning, System: "erp", ErrorClass: "transient", Message: "timeout", Keys: []string{"k"}, Count: 1},
			"[WARNING] erp: transient", "[WARNING] erp: transient\ntimeout\nKeys: k\n"},
		{"group key when no class", alert.Alert{Severity: alert.Critical, GroupKey: "nightly"}, "[CRITICAL] nightly", "[CRITICAL] nightly\nGroup: nightly\n"},
		{"resolved flag wins", alert.Alert{Severity: alert.Critical, Resolved: true, System: "erp", ErrorClass: "permanent", Count: 5},
			"[RESOLVED] erp: permanent (5 occurrences)", "[RESOLVED] erp: permanent (5 occurrences)\n"},
		{"line breaks cannot add header lines", alert.Alert{System: "erp\r\nBcc: x", ErrorClass: "a\nb"}, "[ALERT] erp Bcc: x: a b", "[ALERT] erp Bcc: x: a b\n"},
		{"keys sample and time", outage, "[CRITICAL] portal: permanent (7 occurrences)",
			"[CRITICAL] portal: permanent (7 occurrences)\n" + outage.Message + "\nKeys: cust-1, cust-2 (2 of 7 occurrences shown)\nGroup: portal/permanent\nTime: 2025-03-14T09:00:00Z\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.wantTitle, tc.a.Title()); diff != "" {
				t.Errorf("Title (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantText, tc.a.Text()); diff != "" {
				t.Errorf("Text (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSlog(t *testing.T) {
	for _, tc := range []struct {
		name string
		a    alert.Alert
		want string
	}{
		{"critical", outage, `time=2025-03-14T09:00:00.000Z level=ERROR msg="[CRITICAL] portal: permanent (7 occurrences)" severity=critical system=portal error_class=permanent message="400 \"email\" <invalid> & rejected" count=7 keys="[cust-1 cust-2]" group_key=portal/permanent` + "\n"},
		{"warning", alert.Alert{Severity: alert.Warning, System: "erp"}, `level=WARN msg="[WARNING] erp: failure" severity=warning system=erp` + "\n"},
		{"resolved", alert.Alert{Severity: alert.SeverityResolved, Resolved: true, GroupKey: "g", Count: 3}, `level=INFO msg="[RESOLVED] g (3 occurrences)" severity=resolved count=3 group_key=g resolved=true` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			s := alert.Slog(slog.New(slog.NewTextHandler(&buf, nil)))
			if err := s.Alert(context.Background(), tc.a); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, buf.String()); diff != "" {
				t.Errorf("log (-want +got):\n%s", diff)
			}
		})
	}
	var buf bytes.Buffer
	quiet := alert.Slog(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelError})))
	if err := quiet.Alert(context.Background(), alert.Alert{Severity: alert.Warning}); err != nil || buf.Len() != 0 {
		t.Errorf("a warning below the handler's level: err %v, logged %q; want nothing", err, buf.String())
	}
}

func TestMulti(t *testing.T) {
	boom := errors.New("boom")
	failing := alert.AlerterFunc(func(context.Context, alert.Alert) error { return boom })
	first, last := &recorder{}, &recorder{}
	err := alert.Multi(first, failing, last).Alert(context.Background(), outage)
	var te *alert.TargetError
	if !errors.As(err, &te) || te.Index != 1 || !errors.Is(err, boom) {
		t.Errorf("Multi: %v; want a *TargetError for index 1 wrapping boom", err)
	}
	requireAlerts(t, first.got(), []alert.Alert{outage})
	requireAlerts(t, last.got(), []alert.Alert{outage})
	if err := alert.Multi().Alert(context.Background(), outage); err != nil {
		t.Errorf("empty Multi: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("Multi with a nil alerter did not panic")
		}
	}()
	alert.Multi(first, nil)
}
