package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"strings"
	"time"

	"github.com/concordsync/concord/audit/alert"
)

// DefaultSMTPTimeout bounds one e-mail delivery when [SMTPConfig.Timeout] is
// zero (ctx may bound it further).
const DefaultSMTPTimeout = 30 * time.Second

// SMTPConfig configures [Email]. The zero values of the optional fields are
// documented and useful.
type SMTPConfig struct {
	// Addr is the server's host and port, "smtp.example.com:587".
	// Required.
	Addr string
	// From is the sender address, "Concord <concord@example.com>".
	// Required.
	From string
	// To lists the recipient addresses. At least one is required.
	To []string
	// Username and Password are sent with SMTP AUTH PLAIN when Username
	// is not empty. They require StartTLS: [Email] refuses either without
	// it ("credentials without TLS"), unless AllowPlainAuthOnLoopback is
	// set and the server is on the loopback interface. A Password without
	// a Username is refused too (it would never be sent).
	Username string
	Password string
	// StartTLS requires the connection to be upgraded with STARTTLS before
	// anything else is sent; delivery fails if the server does not offer
	// it. False sends in the clear.
	StartTLS bool
	// AllowPlainAuthOnLoopback permits Username and Password without
	// StartTLS when the host of Addr is the IP address 127.0.0.1 or ::1,
	// for a local relay (a sidecar, a mail submission agent on the same
	// machine) where the credentials never leave the host. It is an
	// explicit opt-in: nothing is sent in the clear unless it is set, and
	// it has no effect for any other host. A name, even "localhost", is
	// not accepted, since what it resolves to is not known when Email
	// checks the configuration; write the address.
	AllowPlainAuthOnLoopback bool
	// TLSConfig is used for STARTTLS; nil means the system's roots and
	// the host of Addr as the server name. Email uses a copy.
	TLSConfig *tls.Config
	// Timeout bounds one delivery (connect to QUIT); zero means
	// DefaultSMTPTimeout.
	Timeout time.Duration
}

// EmailAlerter sends alerts as e-mail over SMTP. Make one with [Email]. It is
// safe for concurrent use; each alert is sent over its own connection.
type EmailAlerter struct {
	cfg  SMTPConfig
	host string
	from string   // envelope sender
	to   []string // envelope recipients
}

var _ alert.Alerter = (*EmailAlerter)(nil)

// Email returns an Alerter that sends each alert as one plain-text e-mail
// (UTF-8, quoted-printable) to every recipient of cfg. The subject is the
// alert's [alert.Alert.Title] (severity, system, error class and count); the body
// is [alert.Alert.Text] (the message, the keys, the group and the time).
//
// Email checks cfg (the address, the sender and recipient addresses, the
// timeout, and that credentials are never sent without TLS) and reports a
// problem as an error matching [alert.ErrInvalidConfig]; it keeps a copy of
// cfg. Credentials without StartTLS are refused here, when the alerter is
// built, rather than at the first alert, unless
// [SMTPConfig.AllowPlainAuthOnLoopback] is set and Addr is 127.0.0.1 or
// [::1]. No error contains the password.
func Email(cfg SMTPConfig) (*EmailAlerter, error) {
	bad := func(format string, args ...any) (*EmailAlerter, error) {
		return nil, fmt.Errorf("alert: email: "+format+": %w", append(args, alert.ErrInvalidConfig)...)
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil || host == "" {
		return bad("Addr %q is not host:port", cfg.Addr)
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return bad("From %q: %v", cfg.From, err)
	}
	if len(cfg.To) == 0 {
		return bad("no recipients in To")
	}
	e := &EmailAlerter{host: host, from: from.Address}
	for _, t := range cfg.To {
		to, err := mail.ParseAddress(t)
		if err != nil {
			return bad("To %q: %v", t, err)
		}
		e.to = append(e.to, to.Address)
	}
	if cfg.Timeout < 0 {
		return bad("negative Timeout %s", cfg.Timeout)
	}
	if (cfg.Username != "" || cfg.Password != "") && !cfg.StartTLS {
		switch {
		case !cfg.AllowPlainAuthOnLoopback:
			return bad("credentials without TLS: set StartTLS (or AllowPlainAuthOnLoopback for a server on 127.0.0.1 or [::1])")
		case !isLoopbackIP(host):
			return bad("credentials without TLS: AllowPlainAuthOnLoopback applies only to 127.0.0.1 and [::1], not host %q", host)
		}
	}
	if cfg.Password != "" && cfg.Username == "" {
		return bad("Password without Username")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultSMTPTimeout
	}
	cfg.To = append([]string(nil), cfg.To...)
	if cfg.TLSConfig != nil {
		cfg.TLSConfig = cfg.TLSConfig.Clone()
	} else {
		cfg.TLSConfig = &tls.Config{}
	}
	if cfg.TLSConfig.ServerName == "" {
		cfg.TLSConfig.ServerName = host
	}
	e.cfg = cfg
	return e, nil
}

// isLoopbackIP reports whether host is one of the two loopback addresses
// to which net/smtp's PlainAuth also sends credentials without TLS.
func isLoopbackIP(host string) bool {
	return host == "127.0.0.1" || host == "::1"
}

// Alert sends a as one e-mail. Cancelling ctx aborts the SMTP conversation.
func (e *EmailAlerter) Alert(ctx context.Context, a alert.Alert) error {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	if err := e.send(ctx, e.message(a, time.Now())); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return deliveryError("email", a, err)
	}
	return nil
}

// send runs one SMTP conversation. Closing the connection when ctx is done
// unblocks whatever step is waiting.
func (e *EmailAlerter) send(ctx context.Context, msg []byte) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", e.cfg.Addr)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	c, err := smtp.NewClient(conn, e.host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("greeting: %w", err)
	}
	defer c.Close()
	if e.cfg.StartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errors.New("server does not offer STARTTLS")
		}
		if err := c.StartTLS(e.cfg.TLSConfig); err != nil {
			return fmt.Errorf("STARTTLS: %w", err)
		}
	}
	if e.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", e.cfg.Username, e.cfg.Password, e.host)); err != nil {
			return fmt.Errorf("AUTH: %w", err)
		}
	}
	if err := c.Mail(e.from); err != nil {
		return fmt.Errorf("MAIL FROM: %w", err)
	}
	for _, to := range e.to {
		if err := c.Rcpt(to); err != nil {
			return fmt.Errorf("RCPT TO %s: %w", to, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if err := c.Quit(); err != nil {
		return fmt.Errorf("QUIT: %w", err)
	}
	return nil
}

// crlf turns line ends into CRLF, leaving CRLF alone.
var crlf = strings.NewReplacer("\r\n", "\r\n", "\n", "\r\n")

// message formats a as an RFC 5322 message with CRLF line ends.
func (e *EmailAlerter) message(a alert.Alert, now time.Time) []byte {
	var b bytes.Buffer
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("From", e.cfg.From)
	header("To", strings.Join(e.cfg.To, ", "))
	header("Subject", mime.QEncoding.Encode("utf-8", a.Title()))
	header("Date", now.Format(time.RFC1123Z))
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	qp.Write([]byte(crlf.Replace(a.Text()))) // writes to a bytes.Buffer do not fail
	qp.Close()
	return b.Bytes()
}
