package notify_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/concordsync/concord/audit/alert"
	"github.com/concordsync/concord/audit/alert/notify"
)

// capture is an HTTP endpoint that records each request body and answers
// with status (200 if zero) and reply.
type capture struct {
	status int
	reply  string
	bodies chan []byte
	header chan http.Header
}

func newCapture(t testing.TB, status int, reply string) (*capture, *httptest.Server) {
	t.Helper()
	c := &capture{status: status, reply: reply, bodies: make(chan []byte, 10), header: make(chan http.Header, 10)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		c.bodies <- body
		c.header <- r.Header.Clone()
		if c.status != 0 {
			w.WriteHeader(c.status)
		}
		io.WriteString(w, c.reply)
	}))
	t.Cleanup(srv.Close)
	return c, srv
}

var outage = alert.Alert{
	Time: t0, Severity: alert.Critical, System: "portal", ErrorClass: "permanent",
	Keys: []string{"cust-1", "cust-2"}, Message: `400 "email" <invalid> & rejected`, Count: 7, GroupKey: "portal/permanent",
}

func TestSlackPayload(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []notify.SlackOption
		want string
	}{{
		name: "text",
		want: `{"text":"[CRITICAL] portal: permanent (7 occurrences)\n400 \"email\" &lt;invalid&gt; &amp; rejected\n` +
			`Keys: cust-1, cust-2 (2 of 7 occurrences shown)\nGroup: portal/permanent\nTime: 2025-03-14T09:00:00Z"}`,
	}, {
		name: "blocks",
		opts: []notify.SlackOption{notify.WithBlocks()},
		want: `{"text":"[CRITICAL] portal: permanent (7 occurrences)\n400 \"email\" &lt;invalid&gt; &amp; rejected\n` +
			`Keys: cust-1, cust-2 (2 of 7 occurrences shown)\nGroup: portal/permanent\nTime: 2025-03-14T09:00:00Z",` +
			`"blocks":[{"type":"section","text":{"type":"mrkdwn","text":"*[CRITICAL] portal: permanent (7 occurrences)*\n400 \"email\" &lt;invalid&gt; &amp; rejected"}},` +
			`{"type":"context","elements":[{"type":"mrkdwn","text":"Keys: cust-1, cust-2 | Group: portal/permanent"}]}]}`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			c, srv := newCapture(t, 0, "ok")
			s, err := notify.Slack(srv.URL+"/services/T000/B000/XXXX", tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Alert(context.Background(), outage); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, string(<-c.bodies)); diff != "" {
				t.Errorf("payload (-want +got):\n%s", diff)
			}
			if got := (<-c.header).Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q; want application/json", got)
			}
		})
	}
}

func TestSlackNon2xx(t *testing.T) {
	_, srv := newCapture(t, http.StatusNotFound, "no_team\n")
	s, err := notify.Slack(srv.URL + "/services/SECRET-TOKEN")
	if err != nil {
		t.Fatal(err)
	}
	err = s.Alert(context.Background(), outage)
	var de *alert.DeliveryError
	var he *notify.HTTPError
	if !errors.As(err, &de) || !errors.As(err, &he) {
		t.Fatalf("Alert: %v; want a *DeliveryError with an *HTTPError", err)
	}
	if diff := cmp.Diff(notify.HTTPError{StatusCode: 404, Body: "no_team"}, *he); diff != "" {
		t.Errorf("HTTPError (-want +got):\n%s", diff)
	}
	if de.Adapter != "slack" || de.System != "portal" || de.GroupKey != "portal/permanent" {
		t.Errorf("DeliveryError names %q, %q, %q; want slack, portal, portal/permanent", de.Adapter, de.System, de.GroupKey)
	}
	want := `alert: slack: system portal, group "portal/permanent": HTTP 404 Not Found: "no_team"`
	if err.Error() != want {
		t.Errorf("error %q; want %q", err, want)
	}
}

// TestHTTPErrorsHideURL: webhook URLs are secrets; a transport error must
// not repeat them.
func TestHTTPErrorsHideURL(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/services/SECRET-TOKEN"
	srv.Close() // nothing listens any more
	s, err := notify.Slack(url)
	if err != nil {
		t.Fatal(err)
	}
	w, err := notify.Webhook(url, []byte("0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []alert.Alerter{s, w} {
		err := a.Alert(context.Background(), outage)
		if err == nil || strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), srv.URL) {
			t.Errorf("error %v; want an error without the URL", err)
		}
	}
}

func TestHTTPAdaptersInvalidConfig(t *testing.T) {
	secret := []byte("0123456789abcdef")
	for _, tc := range []struct {
		name string
		new  func() error
	}{
		{"slack empty URL", func() error { _, err := notify.Slack(""); return err }},
		{"slack relative URL", func() error { _, err := notify.Slack("/hooks/x"); return err }},
		{"slack ftp URL", func() error { _, err := notify.Slack("ftp://example.com/x"); return err }},
		{"slack nil client", func() error { _, err := notify.Slack("https://example.com", notify.WithHTTPClient(nil)); return err }},
		{"webhook bad URL", func() error { _, err := notify.Webhook("http://%zz", secret); return err }},
		{"webhook short secret", func() error { _, err := notify.Webhook("https://example.com", secret[:15]); return err }},
		{"webhook nil client", func() error {
			_, err := notify.Webhook("https://example.com", secret, notify.WithHTTPClient(nil))
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.new(); !errors.Is(err, alert.ErrInvalidConfig) {
				t.Errorf("got %v; want ErrInvalidConfig", err)
			}
		})
	}
}
