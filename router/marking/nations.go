package marking

// Releasability sets, as data. Each is sorted and checked against
// router/label's country table by the tests.

// fiveEyes are the FVEY nations.
var fiveEyes = []string{"AUS", "CAN", "GBR", "NZL", "USA"}

// natoMembers are the 32 NATO members as of Sweden's accession (March
// 2024), as router/label's NATO tetragraph. NATO information is
// releasable to them.
var natoMembers = []string{
	"ALB", "BEL", "BGR", "CAN", "CZE", "DEU", "DNK", "ESP", "EST", "FIN", "FRA",
	"GBR", "GRC", "HRV", "HUN", "ISL", "ITA", "LTU", "LUX", "LVA", "MKD", "MNE",
	"NLD", "NOR", "POL", "PRT", "ROU", "SVK", "SVN", "SWE", "TUR", "USA",
}

// euMembers are the 27 EU member states since the United Kingdom's
// withdrawal (1 February 2020). EU classified information is releasable
// to them.
var euMembers = []string{
	"AUT", "BEL", "BGR", "CYP", "CZE", "DEU", "DNK", "ESP", "EST", "FIN", "FRA",
	"GRC", "HRV", "HUN", "IRL", "ITA", "LTU", "LUX", "LVA", "MLT", "NLD", "POL",
	"PRT", "ROU", "SVK", "SVN", "SWE",
}

// NATOMembers returns the nations NATO information is releasable to.
func NATOMembers() []string { return append([]string(nil), natoMembers...) }

// EUMembers returns the nations EU classified information is releasable to.
func EUMembers() []string { return append([]string(nil), euMembers...) }

// FiveEyes returns the FVEY nations.
func FiveEyes() []string { return append([]string(nil), fiveEyes...) }
