package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/concordsync/concord/audit/alert"
)

// DefaultHTTPTimeout bounds one HTTP delivery when no client is given with
// [WithHTTPClient] (ctx may bound it further).
const DefaultHTTPTimeout = 10 * time.Second

// bodyExcerpt is how much of an error response an [*HTTPError] keeps.
const bodyExcerpt = 512

// httpConfig is what the HTTP adapters share.
type httpConfig struct {
	client *http.Client
}

// SlackOption configures [Slack].
type SlackOption interface{ applySlack(*SlackAlerter) }

// WebhookOption configures [Webhook].
type WebhookOption interface{ applyWebhook(*WebhookAlerter) }

// HTTPOption configures either HTTP adapter, [Slack] or [Webhook].
type HTTPOption interface {
	SlackOption
	WebhookOption
}

type clientOption struct{ c *http.Client }

func (o clientOption) applySlack(s *SlackAlerter)     { s.http.client = o.c }
func (o clientOption) applyWebhook(w *WebhookAlerter) { w.http.client = o.c }

// WithHTTPClient makes an adapter send its requests with c instead of a
// client with [DefaultHTTPTimeout]. A nil c is reported by the constructor.
func WithHTTPClient(c *http.Client) HTTPOption { return clientOption{c} }

// validateURL checks that raw is an absolute http or https URL. The error
// does not repeat the URL, which may hold a secret.
func validateURL(adapter, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("alert: %s: URL does not parse: %w", adapter, alert.ErrInvalidConfig)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("alert: %s: URL must be absolute http or https: %w", adapter, alert.ErrInvalidConfig)
	}
	return nil
}

func (c *httpConfig) validate(adapter string) error {
	if c.client == nil {
		return fmt.Errorf("alert: %s: nil HTTP client: %w", adapter, alert.ErrInvalidConfig)
	}
	return nil
}

// marshal encodes v as JSON without escaping &, < and > (Slack's own
// escapes must arrive as written).
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func defaultHTTP() httpConfig {
	return httpConfig{client: &http.Client{Timeout: DefaultHTTPTimeout}}
}

// post sends body as JSON to rawURL with the extra headers, and turns a
// non-2xx answer into an [*HTTPError]. Transport errors are unwrapped from
// *url.Error, whose text would include the URL.
func (c *httpConfig) post(ctx context.Context, rawURL string, header http.Header, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return errors.New("cannot build request") // the URL was validated; hide it anyway
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "concord-alert")
	resp, err := c.client.Do(req)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			return fmt.Errorf("POST: %w", ue.Err)
		}
		return err
	}
	defer resp.Body.Close()
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, bodyExcerpt))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &HTTPError{StatusCode: resp.StatusCode, Body: string(bytes.TrimSpace(excerpt))}
	}
	return nil
}
