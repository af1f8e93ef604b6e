package normalize_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/transform"
	"github.com/concordsync/concord/transform/normalize"
)

func ExampleFields() {
	inbound := normalize.Fields(map[string]normalize.Normalizer{
		"country": normalize.CountryAlpha2(),
		"state":   normalize.SubdivisionCode("US"),
		"phone":   normalize.Phone("US"),
		"email":   normalize.Email(),
		"since":   normalize.Date("01/02/2006", time.DateOnly),
		"total":   normalize.Amount("USD", normalize.AmountFormat{Thousands: ','}),
	})
	rec := concord.Record{Key: "c1", Fields: map[string]concord.Value{
		"country": "United States of America",
		"state":   "California",
		"phone":   "(650) 253-0000",
		"email":   " Ada@EXAMPLE.com",
		"since":   "03/04/2025",
		"total":   "1,234.5",
	}}
	out, err := inbound.Transform(context.Background(), rec)
	if err != nil {
		panic(err)
	}
	for _, f := range []string{"country", "state", "phone", "email", "since", "total"} {
		fmt.Printf("%s: %v\n", f, out.Fields[f])
	}

	rec.Fields = map[string]concord.Value{"country": "Atlantis"}
	_, err = inbound.Transform(context.Background(), rec)
	fmt.Println(errors.Is(err, normalize.ErrUnknownCountry), err)
	// Output:
	// country: US
	// state: US-CA
	// phone: +16502530000
	// email: Ada@example.com
	// since: 2025-03-04
	// total: 1234.50
	// true record "c1" field "country" value "Atlantis": bad value: unknown country "Atlantis"
}

// A system that stores country names: its Mapping converts them to ISO
// codes inbound and back to names outbound.
func ExampleCountryName() {
	erp := transform.MustMapping(transform.RenameWith("land", "country", transform.Converter{
		In:  normalize.CountryAlpha2(),
		Out: normalize.CountryName(),
	}))
	ctx := context.Background()
	_, err := erp.Inbound().Transform(ctx, concord.Record{Key: "k", Fields: map[string]concord.Value{"land": "Österreich"}})
	fmt.Println(err) // names are English
	in, _ := erp.Inbound().Transform(ctx, concord.Record{Key: "k", Fields: map[string]concord.Value{"land": "austria"}})
	fmt.Println(in.Fields)
	out, _ := erp.Outbound().Transform(ctx, concord.Record{Key: "k", Fields: map[string]concord.Value{"country": "KR"}})
	fmt.Println(out.Fields)
	// Output:
	// record "k" field "land" value "Österreich": bad value: unknown country "Österreich"
	// map[country:AT]
	// map[land:Korea, Republic of]
}

func ExampleSubdivisionCode() {
	code := normalize.SubdivisionCode("CA")
	for _, v := range []string{"Québec", "qc", "CA-QC", "Quebec"} {
		fmt.Println(code(v))
	}
	fmt.Println(normalize.SubdivisionName("AU")("NSW"))
	// Output:
	// CA-QC <nil>
	// CA-QC <nil>
	// CA-QC <nil>
	// CA-QC <nil>
	// New South Wales <nil>
}

func ExampleDateAuto() {
	date := normalize.DateAuto(time.DateOnly)
	fmt.Println(date("2025-03-04T23:30:00-05:00"))
	_, err := date("03/04/2025")
	fmt.Println(errors.Is(err, normalize.ErrAmbiguousDate))

	us := normalize.Date("01/02/2006", time.DateOnly)
	fmt.Println(us("03/04/2025"))
	// Output:
	// 2025-03-04 <nil>
	// true
	// 2025-03-04 <nil>
}

func ExampleAmount() {
	usd := normalize.Amount("USD", normalize.AmountFormat{Thousands: ','})
	fmt.Println(usd("19.99"))
	fmt.Println(usd(19.99))
	fmt.Println(usd("1,000"))
	_, err := usd("19.999")
	fmt.Println(err)
	jpy := normalize.Amount("JPY", normalize.AmountFormat{})
	fmt.Println(jpy(1500))
	// Output:
	// 19.99 <nil>
	// 19.99 <nil>
	// 1000.00 <nil>
	// bad value: bad amount: 3 decimal places, and USD has 2; amounts are not rounded
	// 1500 <nil>
}

func ExamplePhone() {
	phone := normalize.Phone("AT")
	fmt.Println(phone("01 234567890"))
	fmt.Println(phone("+49 30 123456"))
	// Output:
	// +431234567890 <nil>
	// +4930123456 <nil>
}
