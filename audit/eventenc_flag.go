//go:build !goexperiment.jsonv2

package audit

// directEncoding enables the direct event encoder. It matches encoding/json
// as this build has it; with GOEXPERIMENT=jsonv2, encoding/json is another
// implementation, and events are encoded by it alone.
const directEncoding = true
