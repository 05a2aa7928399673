package contract_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/otpscope/otpscope/internal/app"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/jsonshape"
	"github.com/otpscope/otpscope/internal/problem"
	"github.com/otpscope/otpscope/internal/reporter"
	"github.com/otpscope/otpscope/internal/store"
)

// goTypes are the Go types whose JSON each schema of components describes:
// every answer otpscope marshals. (The request bodies, Accepted, written
// by hand in internal/ingest, and the webhook requests are not Go types.)
var goTypes = map[string]reflect.Type{
	"Problem":                   reflect.TypeFor[problem.Details](),
	"ChannelsResponse":          reflect.TypeFor[reporter.ChannelsResponse](),
	"ChannelStats":              reflect.TypeFor[store.ChannelStats](),
	"Percentiles":               reflect.TypeFor[store.Percentiles](),
	"ErrorCount":                reflect.TypeFor[store.ErrorCount](),
	"Conversion":                reflect.TypeFor[store.Conversion](),
	"Completeness":              reflect.TypeFor[store.Completeness](),
	"FallbackResponse":          reflect.TypeFor[reporter.FallbackResponse](),
	"Outcomes":                  reflect.TypeFor[store.Outcomes](),
	"PathStats":                 reflect.TypeFor[store.PathStats](),
	"TimeseriesResponse":        reflect.TypeFor[reporter.TimeseriesResponse](),
	"Series":                    reflect.TypeFor[store.Series](),
	"EventsResponse":            reflect.TypeFor[reporter.EventsResponse](),
	"EventRecord":               reflect.TypeFor[store.EventRecord](),
	"Journey":                   reflect.TypeFor[store.Journey](),
	"AttemptDetail":             reflect.TypeFor[store.AttemptDetail](),
	"StoredEvent":               reflect.TypeFor[store.Event](),
	"PolledStatus":              reflect.TypeFor[store.PolledStatus](),
	"ResendRecord":              reflect.TypeFor[store.ResendRecord](),
	"AlertsResponse":            reflect.TypeFor[reporter.AlertsResponse](),
	"AlertRecord":               reflect.TypeFor[store.AlertRecord](),
	"AlertEpisodesResponse":     reflect.TypeFor[reporter.AlertEpisodesResponse](),
	"AlertEpisode":              reflect.TypeFor[store.AlertEpisode](),
	"FiringResponse":            reflect.TypeFor[reporter.FiringResponse](),
	"FiringAlert":               reflect.TypeFor[reporter.FiringAlert](),
	"RulesResponse":             reflect.TypeFor[reporter.RulesResponse](),
	"RuleInForce":               reflect.TypeFor[reporter.RuleInForce](),
	"TestAlertResponse":         reflect.TypeFor[reporter.TestAlertResponse](),
	"SilencesResponse":          reflect.TypeFor[reporter.SilencesResponse](),
	"Silence":                   reflect.TypeFor[reporter.Silence](),
	"SilenceRequest":            reflect.TypeFor[reporter.SilenceRequest](),
	"TestPost":                  reflect.TypeFor[reporter.TestPost](),
	"SLOResponse":               reflect.TypeFor[reporter.SLOResponse](),
	"SLOBudget":                 reflect.TypeFor[reporter.SLOBudget](),
	"SLOBurn":                   reflect.TypeFor[reporter.SLOBurn](),
	"Alert":                     reflect.TypeFor[events.Alert](),
	"AlertBefore":               reflect.TypeFor[events.AlertBefore](),
	"ResendsResponse":           reflect.TypeFor[reporter.ResendsResponse](),
	"ResendGroup":               reflect.TypeFor[store.ResendGroup](),
	"ResendDecision":            reflect.TypeFor[store.ResendDecision](),
	"DeadLettersResponse":       reflect.TypeFor[reporter.DeadLettersResponse](),
	"DeadLetter":                reflect.TypeFor[store.DeadLetterRecord](),
	"DeleteDeadLettersResponse": reflect.TypeFor[reporter.DeleteDeadLettersResponse](),
	"ReplayRequest":             reflect.TypeFor[reporter.ReplayRequest](),
	"ReplayResult":              reflect.TypeFor[reporter.ReplayResult](),
	"ReplayOutcome":             reflect.TypeFor[reporter.ReplayOutcome](),
	"BackupsResponse":           reflect.TypeFor[reporter.BackupsResponse](),
	"Backup":                    reflect.TypeFor[store.BackupInfo](),
	"StatusResponse":            reflect.TypeFor[app.StatusResponse](),
	"IngestStatus":              reflect.TypeFor[app.IngestStatus](),
	"StreamStatus":              reflect.TypeFor[app.StreamStatus](),
	"SinkStatus":                reflect.TypeFor[app.SinkStatus](),
	"PollerStatus":              reflect.TypeFor[app.PollerStatus](),
	"DeadLettersStatus":         reflect.TypeFor[app.DeadLettersStatus](),
	"LiveEvent":                 reflect.TypeFor[reporter.LiveEvent](),
	"DeliveryError":             reflect.TypeFor[events.DeliveryError](),
	"Track":                     reflect.TypeFor[events.Track](),
}

// TestSchemasMatchGoTypes: each schema names exactly the members its Go
// type marshals (embedded structs' promoted, as encoding/json does), with
// a JSON type they take (null too for a pointer without omitempty), and
// requires every member always present: a field added, renamed or made
// nullable in Go fails here, whether or not a running otpscope's answers
// carried it.
func TestSchemasMatchGoTypes(t *testing.T) {
	schemas := componentSchemas(t)
	for name, goType := range goTypes {
		s, ok := schemas[name]
		if !ok {
			t.Errorf("no schema %s for %s", name, goType)
			continue
		}
		props, _ := s["properties"].(map[string]any)
		var required []string
		list, _ := s["required"].([]any)
		for _, r := range list {
			required = append(required, r.(string))
		}
		named := map[string]bool{}
		for _, f := range jsonshape.Fields(goType) {
			named[f.Name] = true
			p, ok := props[f.Name].(map[string]any)
			if !ok {
				t.Errorf("%s: %s (%s) is not in the schema", name, f.Name, f.Type)
				continue
			}
			allowed := schemaTypes(p, schemas)
			for _, jt := range jsonshape.Types(f.Type, f.Optional, answers) {
				if !slices.Contains(allowed, jt) {
					t.Errorf("%s.%s: Go %s marshals as %s; the schema allows %v", name, f.Name, f.Type, jt, allowed)
				}
			}
			if !f.Optional && !slices.Contains(required, f.Name) {
				t.Errorf("%s.%s: always present (no omitempty) but not required", name, f.Name)
			}
		}
		for p := range props {
			if !named[p] {
				t.Errorf("%s: the schema has %s, which %s does not marshal", name, p, goType)
			}
		}
	}
}

// answers are what the API's writers make of Go values: lists always
// made (never null), store.Duration a number of seconds.
var answers = jsonshape.Options{As: map[reflect.Type]string{reflect.TypeFor[store.Duration](): "number"}}

// schemaTypes are the JSON types schema s allows: its type, or those of
// the schemas its $ref and anyOf name.
func schemaTypes(s map[string]any, components map[string]map[string]any) []string {
	if ref, ok := s["$ref"].(string); ok {
		return schemaTypes(components[strings.TrimPrefix(ref, "#/components/schemas/")], components)
	}
	var out []string
	if alts, ok := s["anyOf"].([]any); ok {
		for _, a := range alts {
			out = append(out, schemaTypes(a.(map[string]any), components)...)
		}
	}
	switch v := s["type"].(type) {
	case string:
		out = append(out, v)
	case []any:
		for _, x := range v {
			out = append(out, x.(string))
		}
	}
	return out
}
