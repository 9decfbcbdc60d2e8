package marking

import (
	"errors"

	"github.com/classroute/classroute/router/label"
)

// usGrammar reads CAPCO banners with router/label, which stays the US
// grammar.
type usGrammar struct{}

func (usGrammar) parse(m string) (Label, error) {
	ul, err := label.Parse(m)
	if err != nil {
		var pe *label.ParseError
		if errors.As(err, &pe) {
			return Label{}, &ParseError{Scheme: US, Marking: m, Part: pe.Part, Reason: pe.Reason}
		}
		return Label{}, errorf(US, m, m, "%v", err)
	}
	return FromUS(ul), nil
}

// FromUS returns the US label of a CAPCO label: its level, its controls
// as Caveats, and its releasability.
func FromUS(ul label.Label) Label {
	return Label{
		Scheme:     US,
		Level:      Level{Name: ul.Level.String(), Rank: int(ul.Level)},
		Caveats:    ul.Controls,
		AnyNation:  ul.AnyNation,
		Nations:    ul.Nations,
		Originator: originators[US],
		US:         &ul,
	}
}

func (usGrammar) format(l Label) string {
	if l.US != nil {
		return l.US.String()
	}
	return label.Label{Level: label.Level(l.Level.Rank), Controls: l.Caveats, AnyNation: l.AnyNation, Nations: l.Nations}.String()
}

func (usGrammar) levels() []Level {
	var ls []Level
	for l := label.Unclassified; l.Valid(); l++ {
		ls = append(ls, Level{Name: l.String(), Rank: int(l)})
	}
	return ls
}

func (usGrammar) words() []string {
	return []string{"UNCLASSIFIED", "CUI", "CONTROLLED", "CONFIDENTIAL", "SECRET", "TOP SECRET"}
}
