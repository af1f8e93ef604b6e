package concord

// Rule names the rule that decided a merge or judged a change: a resolver's
// ("last-writer-wins"), a gate's ("system-of-record"), the engine's own
// ("fast-forward"), or a host's ("vip-customer"). Audit events carry it, so
// that every decision says why. The built-in rules are constants of package
// resolve and package sync, each defined once.
type Rule string

// String returns the rule's name.
func (r Rule) String() string { return string(r) }
