package flow

import (
	_ "embed"
	"encoding/json"
	"fmt"

	"github.com/classroute/classroute/router/marking"
)

//go:embed data/defaults.json
var defaultsJSON []byte

// Defaults returns the default edges and services, validated: DOMAIN.md
// §7.2's model endpoints (the commercial endpoint reached from Azure
// Government, and the in-boundary Azure Government deployment). Every
// record is illustrative. Each call returns new slices.
func Defaults() ([]Edge, []Service) {
	var d struct {
		Edges    []Edge    `json:"edges"`
		Services []Service `json:"services"`
	}
	if err := json.Unmarshal(defaultsJSON, &d); err != nil {
		panic(fmt.Sprintf("flow: data/defaults.json: %v", err))
	}
	for i := range d.Edges {
		if err := d.Edges[i].Validate(marking.Parser{}); err != nil {
			panic(fmt.Sprintf("flow: data/defaults.json: %v", err))
		}
	}
	for i := range d.Services {
		if err := d.Services[i].Validate(marking.Parser{}); err != nil {
			panic(fmt.Sprintf("flow: data/defaults.json: %v", err))
		}
	}
	return d.Edges, d.Services
}
