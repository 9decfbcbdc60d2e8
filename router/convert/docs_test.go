package convert_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/classroute/classroute/providers"
	"github.com/classroute/classroute/router/convert"
)

// What -o yaml and -o json print of a catalogue record, put -f reads back
// unchanged: for every region, provider and tenant of the default
// catalogue, in both formats, print → read → the same API record.
func TestDocsRoundTrip(t *testing.T) {
	cat, err := providers.Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"yaml", "json"} {
		for i := range cat.Regions {
			r := &cat.Regions[i]
			want := convert.RegionDoc{Region: *r, Etag: "42"}.WriteProto()
			doc, err := convert.RegionDocFromProto(want)
			if err != nil {
				t.Fatalf("%s: %v", r.Key(), err)
			}
			var buf bytes.Buffer
			if err := convert.EncodeDoc(&buf, format, doc); err != nil {
				t.Fatal(err)
			}
			back, err := convert.DecodeDoc[convert.RegionDoc](buf.Bytes(), r.Key()+"."+format)
			if err != nil {
				t.Fatalf("%s -o %s does not read back: %v\n%s", r.Key(), format, err, buf.String())
			}
			if got := back.WriteProto(); !proto.Equal(got, want) {
				t.Fatalf("%s -o %s: read back\n%v\nwant\n%v", r.Key(), format, got, want)
			}
		}
		for i := range cat.Tenants {
			want := convert.TenantDoc{Tenant: cat.Tenants[i], Etag: "7"}.Proto()
			doc, err := convert.TenantDocFromProto(want)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := convert.EncodeDoc(&buf, format, doc); err != nil {
				t.Fatal(err)
			}
			back, err := convert.DecodeDoc[convert.TenantDoc](buf.Bytes(), "tenant")
			if err != nil {
				t.Fatalf("tenant %s -o %s: %v\n%s", cat.Tenants[i].ID, format, err, buf.String())
			}
			if got := back.Proto(); !proto.Equal(got, want) {
				t.Fatalf("tenant -o %s: read back\n%v\nwant\n%v", format, got, want)
			}
		}
		for i := range cat.Providers {
			want := convert.ProviderDoc{Provider: cat.Providers[i], Etag: "9"}.Proto()
			doc, _ := convert.ProviderDocFromProto(want)
			var buf bytes.Buffer
			if err := convert.EncodeDoc(&buf, format, doc); err != nil {
				t.Fatal(err)
			}
			back, err := convert.DecodeDoc[convert.ProviderDoc](buf.Bytes(), "provider")
			if err != nil {
				t.Fatal(err)
			}
			if got := back.Proto(); !proto.Equal(got, want) {
				t.Fatalf("provider -o %s: read back %v, want %v", format, got, want)
			}
		}
	}
}

// The catalogue file and the documents are one schema: a region as the
// catalogue file spells it is a valid region document.
func TestCatalogueRegionIsADocument(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "region.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := convert.DecodeDoc[convert.RegionDoc](data, "region.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if doc.Key() != "ke-gov/konza-1" || doc.Personnel.String() == "" {
		t.Fatalf("decoded %+v", doc.Region)
	}
	if _, err := convert.DecodeDoc[convert.RegionDoc](append(data, []byte("colour: blue\n")...), "x.yaml"); err == nil {
		t.Fatal("an unknown field was accepted")
	}
}
