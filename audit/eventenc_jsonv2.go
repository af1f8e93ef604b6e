//go:build goexperiment.jsonv2

package audit

// directEncoding is off with GOEXPERIMENT=jsonv2: encoding/json is then
// another implementation, which the direct encoder has not been checked
// against.
const directEncoding = false
