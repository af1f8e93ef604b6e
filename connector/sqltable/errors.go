package sqltable

import (
	"errors"
	"fmt"
)

// Sentinels that errors.Is finds in the errors this package returns.
var (
	// ErrConfig: a Config that New refuses (in a *ConfigError).
	ErrConfig = errors.New("sqltable: invalid config")
	// ErrValue: a value that does not fit a column's declared type,
	// in a patch or in the table (in a *FieldError).
	ErrValue = errors.New("value does not fit the column's type")
	// ErrUnknownField: a patch names a field that is not a configured
	// field column (in a *FieldError).
	ErrUnknownField = errors.New("not a configured field column")
	// ErrKey: a record key that does not name a row of the table (wrong
	// number of parts, bad escaping, a non-canonical integer).
	ErrKey = errors.New("malformed record key")
	// ErrCursor: a cursor that this connector did not produce for this
	// table (damaged, or from another table or configuration).
	ErrCursor = errors.New("sqltable: invalid cursor")
	// ErrNotPermitted: a create or delete the configuration does not
	// permit.
	ErrNotPermitted = errors.New("not permitted by the configuration")
)

// ConfigError reports a configuration setting that New refuses.
type ConfigError struct {
	// Setting is the Config field ("Table", "Fields", ...).
	Setting string
	// Name is the offending value, if any.
	Name string
	// Reason says what is wrong.
	Reason string
}

// Error names the setting, the value and the reason.
func (e *ConfigError) Error() string {
	if e.Name != "" {
		return fmt.Sprintf("sqltable: Config.%s %q: %s", e.Setting, e.Name, e.Reason)
	}
	return fmt.Sprintf("sqltable: Config.%s: %s", e.Setting, e.Reason)
}

// Unwrap returns ErrConfig.
func (e *ConfigError) Unwrap() error { return ErrConfig }

// FieldError reports one field of one record: a patch value that does not
// fit the column, a field that is not configured, or a value in the table
// that does not read as the column's declared type.
type FieldError struct {
	// Table is the configured table name.
	Table string
	// Key is the record key.
	Key string
	// Field is the column name.
	Field string
	// Reason says what is wrong.
	Reason string
	// Err is ErrValue, ErrUnknownField or ErrKey.
	Err error
}

// Error names the table, record, field and reason.
func (e *FieldError) Error() string {
	return fmt.Sprintf("sqltable %s: record %q, field %q: %s: %s", e.Table, e.Key, e.Field, e.Err, e.Reason)
}

// Unwrap returns Err.
func (e *FieldError) Unwrap() error { return e.Err }
