package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"time"

	pb "github.com/classroute/classroute/proto/classroute/v1"
	"github.com/classroute/classroute/router/client"
)

// kenyaHealthRecords is examples/kenya-health-records.yaml: a Kenyan
// ministry's records, which must stay in Kenya.
func kenyaHealthRecords() *pb.Workload {
	return &pb.Workload{
		Name:                    "kenya-health-records",
		Tenant:                  "ke-moh",
		Label:                   "UNCLASSIFIED",
		AllowedStorageCountries: []string{"KEN"},
		AllowedJurisdictions:    []string{"KEN"},
		StorageTier:             "nearline",
		Resources:               &pb.Resources{MilliCpu: 8000, MemoryMib: 32768},
		Replicas:                1,
	}
}

// Connect with what the environment says (CLASSROUTE_SERVER, and
// CLASSROUTE_TLS_CA, CLASSROUTE_TLS_CERT, CLASSROUTE_TLS_KEY for mutual
// TLS), and place a workload. The request id is returned whether the
// call succeeds or not: a caller that lost the answer places again with
// client.WithRequestID and gets the same placement, never a second one.
func ExampleClient_Place() {
	c, err := client.New(client.FromEnv())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	placed, err := c.Place(ctx, kenyaHealthRecords())
	if err != nil {
		var pe *client.PlaceError
		if errors.As(err, &pe) && pe.OutcomeUnknown() {
			log.Fatalf("outcome unknown: place again with request id %s", pe.RequestID)
		}
		log.Fatal(err)
	}
	fmt.Println("state:", placed.Placement.GetState())
	fmt.Println("region:", placed.Placement.GetAssignments()[0].GetRegion())

	again, err := c.Place(ctx, kenyaHealthRecords(), client.WithRequestID(placed.RequestID))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("same placement:", again.Placement.GetId() == placed.Placement.GetId())
	// Output:
	// state: PLACEMENT_STATE_PLACED
	// region: ke-gov/konza-1
	// same placement: true
}

// Plan says, without committing anything, where a workload would go and
// why every other region is refused.
func ExampleClient_Plan() {
	c, err := client.New(client.FromEnv())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	plan, err := c.Plan(context.Background(), kenyaHealthRecords())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("label:", plan.GetLabel().GetScheme(), plan.GetLabel().GetBanner())
	fmt.Println("chosen:", plan.GetChosen())
	for _, v := range plan.GetRegions() {
		switch v.GetRegion() {
		case "ke-gov/konza-1":
			fmt.Println("ke-gov/konza-1 via", v.GetVia())
		case "aws/us-east-1":
			var codes []string
			for _, r := range v.GetReasons() {
				codes = append(codes, r.GetCode())
			}
			fmt.Println("aws/us-east-1:", strings.Join(codes, ", "))
		}
	}
	// Output:
	// label: KEN UNCLASSIFIED
	// chosen: [ke-gov/konza-1]
	// ke-gov/konza-1 via KEN CONFIDENTIAL accreditation (Government of Kenya (ICT Authority))
	// aws/us-east-1: no_equivalence, residency, jurisdiction
}

// List pages through placements by itself: the loop sees one placement
// at a time, and the next page is fetched when the loop reaches it.
func ExampleClient_List() {
	c, err := client.New(client.FromEnv())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, err := c.Place(ctx, kenyaHealthRecords()); err != nil {
			log.Fatal(err)
		}
	}
	n := 0
	for p, err := range c.List(ctx, &pb.ListRequest{Tenant: "ke-moh", Region: "ke-gov/konza-1", PageSize: 2}) {
		if err != nil {
			log.Fatal(err)
		}
		if p.GetWorkload().GetName() == "kenya-health-records" {
			n++
		}
	}
	fmt.Println("at least 3 listed:", n >= 3)
	// Output:
	// at least 3 listed: true
}

// Watch streams placement changes and resumes by itself after a broken
// stream, without losing or repeating a change; it returns when the
// context ends or the callback returns an error.
func ExampleClient_Watch() {
	c, err := client.New(client.FromEnv())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	placed, err := c.Place(ctx, kenyaHealthRecords())
	if err != nil {
		log.Fatal(err)
	}
	// From the revision before the placement: the watch replays it.
	from := placed.Placement.GetDecidedAtRevision()
	errSeen := fmt.Errorf("seen")
	err = c.Watch(ctx, &pb.WatchRequest{Tenant: "ke-moh", AfterRevision: from}, func(resp *pb.WatchResponse) error {
		for _, ev := range resp.GetEvents() {
			if ev.GetPlacement().GetId() == placed.RequestID {
				fmt.Println(ev.GetType())
				return errSeen
			}
		}
		return nil
	})
	fmt.Println(err == errSeen)
	// Output:
	// PLACEMENT_EVENT_TYPE_PLACED
	// true
}
