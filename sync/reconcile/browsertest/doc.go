// Package browsertest opens the reconciliation report's HTML page in
// headless Chromium (driven by chromedp) and checks what a person sees. It
// is a module of its own so that Concord never depends on chromedp; run it
// with
//
//	cd sync/reconcile/browsertest && go test ./...
//
// The test is skipped, with a message, when no Chromium is installed,
// unless CI=true (then it fails): .ci/run installs Debian's chromium.
package browsertest
