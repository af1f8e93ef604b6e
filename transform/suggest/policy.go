package suggest

import "github.com/concordsync/concord/transform"

// DefaultMargin is the lead over the runner-up that [Policy.Decide]
// requires when Policy.Margin is zero.
const DefaultMargin = transform.DefaultMargin

// Policy says when a suggestion is applied; see [transform.Policy].
type Policy = transform.Policy

// Decision is the outcome of [Policy.Decide]; see [transform.Decision].
type Decision = transform.Decision
