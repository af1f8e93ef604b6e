// Package rest makes a JSON REST API a Concord system, configured in Go:
// [New] takes a [Config] and returns a [Connector] ([connector.Connector]
// and [connector.Getter]); [NewScanning] returns a [Scanning], which adds
// [connector.Scanner] for APIs that list records in key order. Package
// resttest runs a TLS API of the kind it expects, for tests and for trying
// a configuration.
//
// # The API it speaks
//
// Records are JSON objects in a collection (Config.Collection); one record
// lives at the collection's URL plus "/" and its path-escaped key. Fields
// are found in the objects by JSON paths ([Path]: "status",
// "address.city", "tags[0]"). The change feed is a GET endpoint with cursor
// or page pagination ([Changes]). Writes are one request per patch:
//
//   - a field patch is PATCH with a JSON merge patch (RFC 7396) of just
//     the fields it sets, nested at their paths (a nil value sends null,
//     which empties the field), with "If-Match: <tag>" when Patch.IfMatch
//     is set;
//   - Patch.Create is POST to the collection or PUT with "If-None-Match: *"
//     ([CreateMethod]), when Config.Create permits it;
//   - Patch.Delete is DELETE, when Config.AllowDelete permits it; a record
//     already gone (404) counts as deleted;
//   - Patch.IdempotencyKey goes in the "Idempotency-Key" header
//     (Config.IdempotencyHeader).
//
// Record.Tag is the ETag of single-record responses and the value at
// Config.TagPath in lists (quoted as an entity-tag, so that both agree);
// Record.Modified comes from Config.ModifiedPath (RFC 3339).
//
// # Guarantees
//
//   - TLS: a plain http:// BaseURL is refused by New unless
//     Config.AllowInsecureHTTP is set (for tests). Redirects are not
//     followed (net/http would turn a redirected PATCH into a GET that
//     "succeeds", and a redirect may leave TLS): a 3xx is a permanent error.
//   - Auth headers come from Config.Auth, asked before every request, so a
//     rotated token is used at once. A failing or panicking provider fails
//     the request as transient ([ErrAuth]) and nothing is sent.
//   - Every error is classified for the engine: 429, and 503 with
//     Retry-After, are [connector.RateLimited] with the wait the API asked
//     for ([connector.ParseRetryAfter]); other 5xx, 408, 425, timeouts
//     ([ErrTimeout], after Config.Timeout per request) and network errors
//     are [connector.Transient]; 409 and 412 are [connector.Conflict]; 404
//     on a write is [connector.NotFound]; every other status is
//     [connector.Permanent]. The cause is a [*RequestError] naming the
//     method, the endpoint, the record and field when one is at fault, the
//     status and the start of the body. Cancelling the caller's context
//     returns the context's error.
//   - A response larger than Config.MaxResponseBytes is an error
//     ([ErrResponseTooLarge]), never parsed in part. A response that is not
//     the JSON the configuration describes (not JSON, invalid UTF-8, data
//     after the value, a list where an object belongs, a record without a
//     key, a path running through a string, more records than asked for, a
//     page out of order) is an error naming the endpoint
//     ([ErrMalformedResponse]); a value Concord cannot hold (a number past
//     its caps, nesting past [concord.MaxValueDepth]) is [ErrBadValue]
//     naming the record and field. In both cases the whole page fails: no
//     part of it is returned.
//   - Nothing is half-applied: each patch is one request, and its Result
//     says what became of it; one patch failing (or its answer being
//     malformed or oversized) never affects the others. A patch the
//     connector refuses before sending (a field not configured, a []byte,
//     a write to a list element, a key that cannot name a URL, a create or
//     delete not permitted) is a permanent error and no request is sent.
//   - The change feed never goes back: a page without a next cursor keeps
//     the cursor it was read from, and never skips a change across pages
//     (see [Changes] for what each pagination needs from the API).
//   - New sends nothing and starts no goroutine; the connector keeps no
//     goroutine between calls. All methods are safe for concurrent use.
//
// # Read-after-write verification
//
// With Config.Verify set, every accepted write (not a delete) is followed by
// a GET of the record, and each field the patch set is compared with what
// was sent, canonically ([concord.EqualValues], after a JSON round trip, so
// a time sent comes back as its RFC 3339 string; for an object value, the
// members sent, as merge patch semantics leave them). Then:
//
//   - All fields agree: the patch succeeds, with the tag and time read.
//   - The record changed again since the write, by its modification time,
//     or is gone (after a write that did not create it): the patch
//     succeeds; the feed reports the later change. A record just created
//     and not found yet is a disagreement (a lagging replica).
//   - A field disagrees: the write goes into the reverify queue and the
//     patch fails as transient with a [*MismatchError] carrying both
//     values. The engine retries the patch; a retry of the same write (the
//     same key, fields and idempotency key) is not sent again but checked
//     again with another GET. When it agrees, the retry succeeds. After
//     Verify.Checks disagreeing reads in all, the patch fails as permanent,
//     with both values of every disagreeing field in the message, and the
//     engine dead-letters it. A different patch for the record, or a
//     delete, drops the queued write.
//   - The queue holds at most Verify.MaxPending writes; a mismatch found
//     while it is full fails as permanent at once, saying so.
//   - The verification read itself failing leaves the write queued, with
//     no check counted, and the patch fails as transient.
//
// It catches APIs that accept a write and silently drop or alter a field,
// and replicas that lag (a disagreement that clears by the next check).
// A person editing the same field between the write and the check, on an
// API without modification times, looks like a lost write: after
// Verify.Checks reads it is dead-lettered with both values for a person to
// judge.
//
// # What it does not do
//
// It retries nothing itself: the engine retries by the error classes. It
// cannot write one element of a list (a JSON merge patch replaces whole
// lists); such a field is read-only. An object value is merged into what
// the API holds (members not sent are kept). JSON objects with duplicate
// member names are read as encoding/json reads them (the last one wins).
package rest
