package notify

import (
	"context"
	"strings"

	"github.com/concordsync/concord/audit/alert"
)

// SlackAlerter posts alerts to a Slack-compatible incoming webhook. Make one
// with [Slack]. It is safe for concurrent use.
type SlackAlerter struct {
	url    string
	http   httpConfig
	blocks bool
}

var _ alert.Alerter = (*SlackAlerter)(nil)

type blocksOption struct{}

func (blocksOption) applySlack(s *SlackAlerter) { s.blocks = true }

// WithBlocks makes [Slack] add Block Kit blocks to each message (a section
// with the title and message, a context line with the keys and group)
// besides the plain "text", which Slack then uses for notifications only.
func WithBlocks() SlackOption { return blocksOption{} }

// Slack returns an Alerter that posts each alert to the incoming webhook at
// webhookURL (Slack, or a compatible service such as Mattermost) as
//
//	{"text": "<Title>\n<Message>\nKeys: ...\nGroup: ...\nTime: ..."}
//
// that is, [alert.Alert.Text] with Slack's special characters &, < and > escaped;
// [WithBlocks] adds blocks. An answer outside 2xx is returned as an
// [*HTTPError] (with the status and the start of the body) inside a
// [*DeliveryError]. The URL is a secret: it appears in no error.
//
// Slack reports an invalid webhook URL or a malformed message.
func Slack(webhookURL string, opts ...SlackOption) (*SlackAlerter, error) {
	s := &SlackAlerter{url: webhookURL, http: defaultHTTP()}
	for _, o := range opts {
		o.applySlack(s)
	}
	if err := validateURL("slack", webhookURL); err != nil {
		return nil, err
	}
	if err := s.http.validate("slack"); err != nil {
		return nil, err
	}
	return s, nil
}

// slackMessage is the incoming-webhook payload.
type slackMessage struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks,omitempty"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// slackEscape escapes the characters Slack's message format gives meaning
// to, as Slack documents.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// Alert posts a to the webhook.
func (s *SlackAlerter) Alert(ctx context.Context, a alert.Alert) error {
	body, err := marshal(s.message(a))
	if err != nil {
		return deliveryError("slack", a, err)
	}
	if err := s.http.post(ctx, s.url, nil, body); err != nil {
		return deliveryError("slack", a, err)
	}
	return nil
}

func (s *SlackAlerter) message(a alert.Alert) slackMessage {
	m := slackMessage{Text: slackEscape.Replace(strings.TrimSuffix(a.Text(), "\n"))}
	if !s.blocks {
		return m
	}
	main := "*" + slackEscape.Replace(a.Title()) + "*"
	if a.Message != "" {
		main += "\n" + slackEscape.Replace(a.Message)
	}
	m.Blocks = []slackBlock{{Type: "section", Text: &slackText{Type: "mrkdwn", Text: main}}}
	var ctxLine []string
	if len(a.Keys) > 0 {
		ctxLine = append(ctxLine, "Keys: "+strings.Join(a.Keys, ", "))
	}
	if a.GroupKey != "" {
		ctxLine = append(ctxLine, "Group: "+a.GroupKey)
	}
	if len(ctxLine) > 0 {
		m.Blocks = append(m.Blocks, slackBlock{Type: "context", Elements: []slackText{
			{Type: "mrkdwn", Text: slackEscape.Replace(strings.Join(ctxLine, " | "))},
		}})
	}
	return m
}
