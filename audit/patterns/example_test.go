package patterns_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/audit/patterns"
)

func ExampleFind() {
	// Four weeks of reads and writes, one every 5 minutes, of three
	// systems, for records of two regions. The warehouse refuses writes of
	// EU records during its nightly job (02:00 to 03:00); one attempt in
	// 41 times out anywhere.
	var obs []patterns.Observation
	start := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range 8000 {
		at := start.Add(time.Duration(i) * 5 * time.Minute)
		system := []concord.SystemID{"crm", "erp", "warehouse"}[i%3]
		region := []string{"EU", "US"}[i/3%2]
		direction := []string{patterns.Read, patterns.Write}[i/6%2]
		ob := patterns.Observation{Time: at, System: system, Direction: direction,
			Attrs: map[string]string{"region": region}}
		switch {
		case system == "warehouse" && direction == patterns.Write && region == "EU" && at.Hour() == 2:
			ob.Failed, ob.ErrorClass = true, "permanent"
		case i%41 == 0:
			ob.Failed, ob.ErrorClass = true, "transient"
		}
		obs = append(obs, ob)
	}
	ps, err := patterns.Find(context.Background(), obs, patterns.Options{MaxItems: 4})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range ps {
		fmt.Println(p.Text)
	}
	// Output:
	// 13% of failures are warehouse writes between 02:00 and 03:00, for region=EU (rate 100% against a base rate of 2.8%; 28 of 28 attempts failed; errors: permanent 100%)
}

func ExampleFromEvents() {
	at := time.Date(2025, 3, 1, 2, 30, 0, 0, time.UTC)
	events := []audit.Event{
		{Time: at, Kind: audit.WriteAttempted, Cycle: 7, System: "warehouse", Key: "eu-17", Fields: []string{"stock"}},
		{Time: at, Kind: audit.WriteFailed, Cycle: 7, System: "warehouse", Key: "eu-17", Fields: []string{"stock"}, ErrorClass: "permanent"},
		{Time: at, Kind: audit.WriteDeadLettered, Cycle: 7, System: "warehouse", Key: "eu-17", ErrorClass: "permanent"},
		{Time: at, Kind: audit.WriteAttempted, Cycle: 7, System: "crm", Key: "us-4", Fields: []string{"email"}},
		{Time: at, Kind: audit.WriteSucceeded, Cycle: 7, System: "crm", Key: "us-4", Fields: []string{"email"}},
		{Time: at, Kind: audit.ReadFailed, Cycle: 7, System: "erp", ErrorClass: "transient"},
	}
	// The host knows each record's region; here it is in the key.
	region := func(ev audit.Event) map[string]string {
		if r, _, ok := strings.Cut(ev.Key, "-"); ok {
			return map[string]string{"region": strings.ToUpper(r)}
		}
		return nil
	}
	obs, err := patterns.FromEvents(events, region)
	if err != nil {
		fmt.Println(err)
		return
	}
	// The log holds no successful read: add them (from the cycle reports)
	// before calling Find, for read rates to mean anything.
	obs = append(obs, patterns.Observation{Time: at, System: "erp", Direction: patterns.Read})
	for _, ob := range obs {
		fmt.Printf("%s %s %v failed=%v class=%q %v\n", ob.System, ob.Direction, ob.Fields, ob.Failed, ob.ErrorClass, ob.Attrs)
	}
	// Output:
	// warehouse write [stock] failed=true class="permanent" map[region:EU]
	// crm write [email] failed=false class="" map[region:US]
	// erp read [] failed=true class="transient" map[]
	// erp read [] failed=false class="" map[]
}
