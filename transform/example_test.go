package transform_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/transform"
)

// splitName is the inbound half of a Computed rule: a system's "name" is
// the canonical "first_name" and "last_name" (the first word, then the rest).
func splitName(v []concord.Value) ([]concord.Value, error) {
	if v[0] == nil {
		return []concord.Value{nil, nil}, nil
	}
	s, ok := v[0].(string)
	if !ok {
		return nil, fmt.Errorf("%w: want string, got %T", transform.ErrWrongType, v[0])
	}
	first, last, _ := strings.Cut(s, " ")
	return []concord.Value{first, last}, nil
}

// joinName is the outbound half: "first_name" and "last_name" joined by a
// space, or just the first name when there is no last name.
func joinName(v []concord.Value) ([]concord.Value, error) {
	if v[0] == nil && v[1] == nil {
		return []concord.Value{nil}, nil
	}
	first, ok1 := v[0].(string)
	last, ok2 := v[1].(string)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("%w: want two strings, got %T and %T", transform.ErrWrongType, v[0], v[1])
	}
	if last == "" {
		return []concord.Value{first}, nil
	}
	return []concord.Value{first + " " + last}, nil
}

func ExampleMapping() {
	portal := transform.MustMapping(
		transform.Rename("zip", "postal_code"),
		transform.Rename("tel", "phone"),
		transform.RenameWith("vip", "is_vip", transform.BoolString("yes", "no")),
		transform.Computed([]string{"name"}, []string{"first_name", "last_name"}, splitName, joinName),
		transform.Drop("internal_id"),
		transform.Constant("source", "concord"),
	)
	ctx := context.Background()

	// Inbound: a record as the portal reports it.
	in, err := portal.Inbound().Transform(ctx, concord.Record{Key: "c1", Fields: map[string]concord.Value{
		"zip": "1000", "tel": nil, "vip": "yes", "name": "Ada Lovelace",
		"internal_id": 77, "source": "portal", "note": "passes through",
	}})
	if err != nil {
		panic(err)
	}
	fmt.Println("canonical:", in.Fields)

	// Outbound: the canonical record in the portal's shape.
	out, err := portal.Outbound().Transform(ctx, in)
	if err != nil {
		panic(err)
	}
	fmt.Println("portal:   ", out.Fields)

	// A partial record: only what the webhook reported.
	partial, _ := portal.Inbound().Transform(ctx, concord.Record{Key: "c1", Fields: map[string]concord.Value{"zip": "1010"}})
	fmt.Println("partial:  ", partial.Fields)

	// A value the rule cannot convert names the record and the field.
	_, err = portal.Inbound().Transform(ctx, concord.Record{Key: "c2", Fields: map[string]concord.Value{"vip": "maybe"}})
	fmt.Println("error:    ", err, errors.Is(err, transform.ErrBadValue))
	// Output:
	// canonical: map[first_name:Ada is_vip:true last_name:Lovelace note:passes through phone:<nil> postal_code:1000]
	// portal:    map[name:Ada Lovelace note:passes through source:concord tel:<nil> vip:yes zip:1000]
	// partial:   map[postal_code:1010]
	// error:     record "c2" field "vip" value "maybe": bad value: want "yes" or "no" true
}

// Lineage tells which fields of the other shape some fields can change,
// without running the rules: the sync engine asks it to learn which of a
// system's fields a write sets, and which canonical fields that write can
// change when the system reports the record again.
func ExampleLineage() {
	portal := transform.MustMapping(
		transform.Rename("zip", "postal_code"),
		transform.Computed([]string{"name"}, []string{"first_name", "last_name"}, splitName, joinName),
		transform.Constant("source", "concord"),
	)
	out, ok := transform.Lineage(portal.Outbound(), []string{"last_name", "note"})
	fmt.Println(out, ok)
	in, ok := transform.Lineage(portal.Inbound(), []string{"zip"})
	fmt.Println(in, ok)
	_, ok = transform.Lineage(transform.Func(func(_ context.Context, r concord.Record) (concord.Record, error) { return r, nil }), []string{"zip"})
	fmt.Println(ok)
	// Output:
	// [name note source] true
	// [postal_code] true
	// false
}

func ExampleNewMapping() {
	_, err := transform.NewMapping(
		transform.Rename("zip", "postal_code"),
		transform.Rename("postcode", "postal_code"),
	)
	fmt.Println(err)
	fmt.Println(errors.Is(err, transform.ErrInvalidMapping))
	// Output:
	// invalid mapping: rule 2 Rename("postcode", "postal_code"): canonical field "postal_code" already claimed by Rename("zip", "postal_code")
	// true
}

func ExampleChain() {
	trim := transform.Func(func(_ context.Context, rec concord.Record) (concord.Record, error) {
		fields := make(map[string]concord.Value, len(rec.Fields))
		for name, v := range rec.Fields {
			if s, ok := v.(string); ok {
				v = strings.TrimSpace(s)
			}
			fields[name] = v
		}
		rec.Fields = fields
		return rec, nil
	})
	warehouse := transform.MustMapping(
		transform.RenameWith("shipped", "shipped_on", transform.TimeString("02.01.2006", nil)),
	)
	inbound := transform.Chain(trim, warehouse.Inbound())

	rec, err := inbound.Transform(context.Background(), concord.Record{Key: "o1", Fields: map[string]concord.Value{
		"shipped": " 24.12.2024 ",
	}})
	fmt.Println(rec.Fields, err)

	_, err = inbound.Transform(context.Background(), concord.Record{Key: "o2", Fields: map[string]concord.Value{
		"shipped": "2024-12-24",
	}})
	var fe *transform.FieldError
	fmt.Println(errors.As(err, &fe), fe.Field)
	fmt.Println(err)
	// Output:
	// map[shipped_on:2024-12-24 00:00:00 +0000 UTC] <nil>
	// true shipped
	// step 2 of 2 (mapping inbound): record "o2" field "shipped" value "2024-12-24": bad value: parsing time "2024-12-24" as "02.01.2006": cannot parse "24-12-24" as "."
}
