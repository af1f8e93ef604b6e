package notify_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"

	"github.com/concordsync/concord/audit/alert"
	"github.com/concordsync/concord/audit/alert/notify"
)

// mailbox is a go-smtp backend that keeps every message it accepts.
type mailbox struct {
	user, pass string // required AUTH PLAIN credentials; none if user is ""

	mu   sync.Mutex
	msgs []received
}

type received struct {
	From, User string
	To         []string
	TLS        bool
	Data       []byte
}

func (m *mailbox) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{box: m, conn: c}, nil
}

func (m *mailbox) all() []received {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]received(nil), m.msgs...)
}

type session struct {
	box  *mailbox
	conn *smtp.Conn
	msg  received
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != s.box.user || pass != s.box.pass {
			return errors.New("invalid credentials")
		}
		s.msg.User = user
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.box.user != "" && s.msg.User == "" {
		return smtp.ErrAuthRequired
	}
	s.msg.From = from
	_, s.msg.TLS = s.conn.TLSConnectionState()
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.msg.To = append(s.msg.To, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.msg.Data = b
	s.box.mu.Lock()
	s.box.msgs = append(s.box.msgs, s.msg)
	s.box.mu.Unlock()
	return nil
}

func (s *session) Reset()        { s.msg = received{User: s.msg.User} }
func (s *session) Logout() error { return nil }

// startSMTP runs an SMTP server for box on 127.0.0.1 until the test ends;
// with tlsCfg it offers STARTTLS. It returns the server's address.
func startSMTP(t testing.TB, box *mailbox, tlsCfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(box)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.TLSConfig = tlsCfg
	srv.ErrorLog = log.New(io.Discard, "", 0)
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ln.Addr().String()
}

// selfSigned returns a server certificate for 127.0.0.1 and a pool that
// trusts it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "concord test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func TestEmail(t *testing.T) {
	cert, pool := selfSigned(t)
	for _, tc := range []struct {
		name     string
		box      *mailbox
		tls      bool
		user     string
		wantUser string
	}{
		{name: "plain"},
		// Credentials in the clear to 127.0.0.1, with the opt-in.
		{name: "auth on loopback", box: &mailbox{user: "concord", pass: "s3cret"}, user: "concord", wantUser: "concord"},
		{name: "starttls and auth", box: &mailbox{user: "concord", pass: "s3cret"}, tls: true, user: "concord", wantUser: "concord"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			box := tc.box
			if box == nil {
				box = &mailbox{}
			}
			var serverTLS *tls.Config
			if tc.tls {
				serverTLS = &tls.Config{Certificates: []tls.Certificate{cert}}
			}
			addr := startSMTP(t, box, serverTLS)
			cfg := notify.SMTPConfig{
				Addr: addr, From: "Concord <concord@example.com>", To: []string{"ops@example.com", "Ann <ann@example.com>"},
				StartTLS: tc.tls, TLSConfig: &tls.Config{RootCAs: pool},
			}
			if tc.user != "" {
				cfg.Username, cfg.Password = tc.user, "s3cret"
				cfg.AllowPlainAuthOnLoopback = !tc.tls
			}
			e, err := notify.Email(cfg)
			if err != nil {
				t.Fatal(err)
			}
			a := outage
			a.Message = "HTTP 400: e-mail address rejected — ünïcode and a long line " + strings.Repeat("x", 100)
			if err := e.Alert(context.Background(), a); err != nil {
				t.Fatal(err)
			}
			msgs := box.all()
			if len(msgs) != 1 {
				t.Fatalf("%d messages received; want 1", len(msgs))
			}
			got := msgs[0]
			if diff := cmp.Diff(received{From: "concord@example.com", To: []string{"ops@example.com", "ann@example.com"}, User: tc.wantUser, TLS: tc.tls},
				received{From: got.From, To: got.To, User: got.User, TLS: got.TLS}); diff != "" {
				t.Errorf("envelope (-want +got):\n%s", diff)
			}
			subject, body := parseMail(t, got.Data)
			if want := "[CRITICAL] portal: permanent (7 occurrences)"; subject != want {
				t.Errorf("subject %q; want %q", subject, want)
			}
			wantBody := "[CRITICAL] portal: permanent (7 occurrences)\r\n" + a.Message + "\r\n" +
				"Keys: cust-1, cust-2 (2 of 7 occurrences shown)\r\nGroup: portal/permanent\r\nTime: 2025-03-14T09:00:00Z\r\n"
			if diff := cmp.Diff(wantBody, body); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
}

// parseMail returns the decoded subject and body of a message.
func parseMail(t testing.TB, data []byte) (subject, body string) {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(string(data)))
	if err != nil {
		t.Fatalf("message does not parse: %v\n%s", err, data)
	}
	subject, err = new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Header.Get("Content-Transfer-Encoding"); got != "quoted-printable" {
		t.Fatalf("Content-Transfer-Encoding %q; want quoted-printable", got)
	}
	b, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if len(line) > 1000 {
			t.Errorf("line of %d bytes; SMTP allows 1000", len(line))
		}
	}
	return subject, string(b)
}

func TestEmailFailures(t *testing.T) {
	box := &mailbox{user: "concord", pass: "s3cret"}
	addr := startSMTP(t, box, nil)
	cfg := notify.SMTPConfig{Addr: addr, From: "concord@example.com", To: []string{"ops@example.com"}}
	for _, tc := range []struct {
		name    string
		change  func(*notify.SMTPConfig)
		wantMsg string
	}{
		{"no STARTTLS offered", func(c *notify.SMTPConfig) { c.StartTLS = true }, "server does not offer STARTTLS"},
		{"wrong password", func(c *notify.SMTPConfig) {
			c.Username, c.Password, c.AllowPlainAuthOnLoopback = "concord", "guess", true
		}, "AUTH"},
		{"auth required", func(*notify.SMTPConfig) {}, "MAIL FROM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			tc.change(&c)
			e, err := notify.Email(c)
			if err != nil {
				t.Fatal(err)
			}
			err = e.Alert(context.Background(), outage)
			var de *alert.DeliveryError
			if !errors.As(err, &de) || de.Adapter != "email" || de.System != "portal" || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("Alert: %v; want an email *DeliveryError for portal mentioning %q", err, tc.wantMsg)
			}
		})
	}
	if n := len(box.all()); n != 0 {
		t.Errorf("%d messages accepted; want 0", n)
	}
}

// TestEmailContextCancelled: a server that never answers does not hold the
// caller beyond ctx.
func TestEmailContextCancelled(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept() // accept, then say nothing
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	e, err := notify.Email(notify.SMTPConfig{Addr: ln.Addr().String(), From: "concord@example.com", To: []string{"ops@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = e.Alert(ctx, outage)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Alert: %v; want context.DeadlineExceeded", err)
	}
	ln.Close()
	for c := range accepted {
		c.Close()
	}
}

func TestEmailInvalidConfig(t *testing.T) {
	good := notify.SMTPConfig{Addr: "smtp.example.com:587", From: "concord@example.com", To: []string{"ops@example.com"}}
	for _, tc := range []struct {
		name   string
		change func(*notify.SMTPConfig)
	}{
		{"no port", func(c *notify.SMTPConfig) { c.Addr = "smtp.example.com" }},
		{"no host", func(c *notify.SMTPConfig) { c.Addr = ":587" }},
		{"bad from", func(c *notify.SMTPConfig) { c.From = "concord" }},
		{"no recipients", func(c *notify.SMTPConfig) { c.To = nil }},
		{"bad recipient", func(c *notify.SMTPConfig) { c.To = []string{"ops@example.com", "ops\r\nBcc: x@example.com"} }},
		{"negative timeout", func(c *notify.SMTPConfig) { c.Timeout = -time.Second }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.change(&c)
			if _, err := notify.Email(c); !errors.Is(err, alert.ErrInvalidConfig) {
				t.Errorf("Email: %v; want ErrInvalidConfig", err)
			}
		})
	}
	if _, err := notify.Email(good); err != nil {
		t.Errorf("Email(valid config): %v", err)
	}
}

// TestEmailCredentialsWithoutTLS: a Username or Password without StartTLS
// is refused by Email itself, naming the reason and never the password,
// unless the opt-in is set and the server is 127.0.0.1 or [::1].
func TestEmailCredentialsWithoutTLS(t *testing.T) {
	const password = "pa55-W0RD-that-must-not-leak"
	base := notify.SMTPConfig{From: "concord@example.com", To: []string{"ops@example.com"}}
	for _, tc := range []struct {
		name     string
		addr     string
		user     string
		pass     string
		startTLS bool
		optIn    bool
		wantMsg  string // "" means accepted
	}{
		{"user and password, remote", "smtp.example.com:587", "concord", password, false, false, "credentials without TLS"},
		{"user only, remote", "smtp.example.com:587", "concord", "", false, false, "credentials without TLS"},
		{"password only, remote", "smtp.example.com:587", "", password, false, false, "credentials without TLS"},
		{"opt-in, remote host", "smtp.example.com:25", "concord", password, false, true, "credentials without TLS"},
		{"opt-in, remote IP", "192.0.2.1:25", "concord", password, false, true, "credentials without TLS"},
		{"opt-in, localhost by name", "localhost:25", "concord", password, false, true, "credentials without TLS"},
		{"opt-in, other loopback IP", "127.0.0.2:25", "concord", password, false, true, "credentials without TLS"},
		{"opt-in, IPv4-mapped loopback", "[::ffff:127.0.0.1]:25", "concord", password, false, true, "credentials without TLS"},
		{"loopback without opt-in", "127.0.0.1:25", "concord", password, false, false, "credentials without TLS"},
		{"IPv6 loopback without opt-in", "[::1]:25", "concord", password, false, false, "credentials without TLS"},
		{"opt-in, 127.0.0.1", "127.0.0.1:25", "concord", password, false, true, ""},
		{"opt-in, ::1", "[::1]:25", "concord", password, false, true, ""},
		{"STARTTLS, remote", "smtp.example.com:587", "concord", password, true, false, ""},
		{"STARTTLS and opt-in, remote", "smtp.example.com:587", "concord", password, true, true, ""},
		{"password only, STARTTLS", "smtp.example.com:587", "", password, true, false, "Password without Username"},
		{"no credentials, remote, no TLS", "smtp.example.com:25", "", "", false, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			c.Addr, c.Username, c.Password, c.StartTLS, c.AllowPlainAuthOnLoopback = tc.addr, tc.user, tc.pass, tc.startTLS, tc.optIn
			e, err := notify.Email(c)
			if tc.wantMsg == "" {
				if err != nil || e == nil {
					t.Fatalf("Email: %v; want accepted", err)
				}
				return
			}
			if !errors.Is(err, alert.ErrInvalidConfig) || e != nil || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("Email: %v; want ErrInvalidConfig saying %q", err, tc.wantMsg)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("error contains the password: %v", err)
			}
		})
	}
}

// TestEmailErrorsHidePassword: no error of Email or of a failed delivery
// contains the password, whatever else is wrong.
func TestEmailErrorsHidePassword(t *testing.T) {
	const password = "pa55-W0RD-that-must-not-leak"
	box := &mailbox{user: "concord", pass: "the-right-one"}
	addr := startSMTP(t, box, nil)
	good := notify.SMTPConfig{Addr: addr, From: "concord@example.com", To: []string{"ops@example.com"},
		Username: "concord", Password: password, AllowPlainAuthOnLoopback: true}
	for _, change := range []func(*notify.SMTPConfig){
		func(c *notify.SMTPConfig) { c.Addr = "nowhere" },
		func(c *notify.SMTPConfig) { c.From = "not an address" },
		func(c *notify.SMTPConfig) { c.To = []string{"bad"} },
		func(c *notify.SMTPConfig) { c.Timeout = -1 },
		func(c *notify.SMTPConfig) { c.AllowPlainAuthOnLoopback = false },
		func(c *notify.SMTPConfig) { c.Username = "" },
	} {
		c := good
		change(&c)
		if _, err := notify.Email(c); err == nil || strings.Contains(err.Error(), password) {
			t.Errorf("Email: %v; want an error without the password", err)
		}
	}
	e, err := notify.Email(good)
	if err != nil {
		t.Fatal(err)
	}
	// The server refuses the password: the AUTH error does not echo it.
	if err := e.Alert(context.Background(), outage); err == nil || !strings.Contains(err.Error(), "AUTH") || strings.Contains(err.Error(), password) {
		t.Errorf("Alert: %v; want an AUTH error without the password", err)
	}
}
