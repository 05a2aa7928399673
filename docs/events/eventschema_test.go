package eventschema_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	eventschema "github.com/otpscope/otpscope/docs/events"
	"github.com/otpscope/otpscope/internal/broker"
	"github.com/otpscope/otpscope/internal/events"
	"github.com/otpscope/otpscope/internal/jsonshape"
	"github.com/otpscope/otpscope/internal/reporter"
)

// goTypes are the Go types whose JSON is each CloudEvents type's payload.
var goTypes = map[string]reflect.Type{
	events.TypeDeliveryStatus: reflect.TypeFor[events.DeliveryStatus](),
	events.TypeDeadLetter:     reflect.TypeFor[events.DeadLetter](),
	events.TypeOTPStatus:      reflect.TypeFor[events.OTPStatus](),
	events.TypeV1Event:        reflect.TypeFor[events.V1Event](),
	events.TypeResend:         reflect.TypeFor[events.Resend](),
	events.TypeReconcile:      reflect.TypeFor[events.Reconcile](),
	events.TypeTrack:          reflect.TypeFor[events.Track](),
	events.TypeSilentOutcome:  reflect.TypeFor[events.SilentOutcome](),
	events.TypePushApproval:   reflect.TypeFor[events.PushEvent](),
	events.TypeAlert:          reflect.TypeFor[events.Alert](),
	events.TypeReport:         reflect.TypeFor[reporter.Report](),
}

// TestEveryTypeHasASchema: a schema for each CloudEvents type otpscope
// publishes, and none for a type it does not.
func TestEveryTypeHasASchema(t *testing.T) {
	var want []string
	for typ := range goTypes {
		want = append(want, typ)
	}
	slices.Sort(want)
	if got := eventschema.Types(); !slices.Equal(got, want) {
		t.Errorf("schemas for %v; want one for each of %v", got, want)
	}
	if _, err := eventschema.Compile(); err != nil {
		t.Fatal(err)
	}
}

// TestSchemasMatchGoTypes: each schema names exactly the fields its Go type
// marshals, with the JSON types they take (null where a nil pointer, slice
// or map is marshalled), requires every field that is always present, and
// describes each; nested objects it details are held the same way.
func TestSchemasMatchGoTypes(t *testing.T) {
	for typ, goType := range goTypes {
		var doc map[string]any
		raw, err := eventschema.Raw(typ)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if !strings.Contains(doc["description"].(string), typ) {
			t.Errorf("%s: the description does not name its ce-type", typ)
		}
		checkObject(t, typ, doc, goType)
	}
}

// closedSets are the fields whose values otpscope alone chooses, with every
// value the code publishes in them: the README promises the schemas list
// these sets, so a value added in code must reach its schema's enum.
var closedSets = []struct {
	typ, field string
	values     []string
}{
	{events.TypeDeliveryStatus, "source", []string{events.SourceWebhook, events.SourcePoll}},
	{events.TypePushApproval, "source", []string{events.SourceWebhook, events.SourcePoll}},
	{events.TypeOTPStatus, "source", []string{events.SourcePoll, events.SourceUpstream}},
	{events.TypeResend, "result", []string{events.ResendSent, events.ResendSkipped, events.ResendFailed, events.ResendDryRun}},
	{events.TypeReconcile, "result", []string{events.ReconcileUnrecoverable}},
	{events.TypeAlert, "state", []string{events.AlertFiring, events.AlertResolved}},
	{events.TypeDeadLetter, "source", broker.DeadLetterSources},
}

// TestSchemasListTheClosedSets: each closed set's schema has an enum of
// exactly the values the code publishes.
func TestSchemasListTheClosedSets(t *testing.T) {
	for _, c := range closedSets {
		var doc struct {
			Properties map[string]struct {
				Enum []string `json:"enum"`
			} `json:"properties"`
		}
		raw, err := eventschema.Raw(c.typ)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s: %v", c.typ, err)
		}
		got, want := slices.Sorted(slices.Values(doc.Properties[c.field].Enum)), slices.Sorted(slices.Values(c.values))
		if !slices.Equal(got, want) {
			t.Errorf("%s.%s: enum %q; want the values the code publishes, %q", c.typ, c.field, got, want)
		}
	}
}

// payloads are what the publishers make of Go values: a nil slice or map
// is written, as null.
var payloads = jsonshape.Options{NilListsNull: true}

func schemaTypes(s map[string]any) []string {
	switch v := s["type"].(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			out = append(out, x.(string))
		}
		return out
	}
	return nil
}

func checkObject(t *testing.T, path string, s map[string]any, goType reflect.Type) {
	t.Helper()
	for goType.Kind() == reflect.Pointer {
		goType = goType.Elem()
	}
	props, _ := s["properties"].(map[string]any)
	var required []string
	if r, ok := s["required"].([]any); ok {
		for _, x := range r {
			required = append(required, x.(string))
		}
	}
	named := map[string]bool{}
	for _, f := range jsonshape.Fields(goType) {
		named[f.Name] = true
		p, ok := props[f.Name].(map[string]any)
		if !ok {
			t.Errorf("%s: field %s (%s) is not in the schema", path, f.Name, f.Type)
			continue
		}
		if d, _ := p["description"].(string); d == "" {
			t.Errorf("%s.%s: no description", path, f.Name)
		}
		allowed := schemaTypes(p)
		for _, jt := range jsonshape.Types(f.Type, f.Optional, payloads) {
			if !slices.Contains(allowed, jt) {
				t.Errorf("%s.%s: Go %s may marshal as %s; the schema allows %v", path, f.Name, f.Type, jt, allowed)
			}
		}
		if f.Type == reflect.TypeFor[time.Time]() && p["format"] != "date-time" {
			t.Errorf("%s.%s: a time without format date-time", path, f.Name)
		}
		if !f.Optional && !slices.Contains(required, f.Name) {
			t.Errorf("%s.%s: always present (no omitempty) but not required", path, f.Name)
		}
		if _, detailed := p["properties"]; detailed {
			checkObject(t, path+"."+f.Name, p, f.Type)
		}
	}
	for name := range props {
		if !named[name] {
			t.Errorf("%s: the schema has %s, which %s does not marshal", path, name, goType)
		}
	}
	for _, r := range required {
		if !named[r] {
			t.Errorf("%s: requires %s, which %s does not marshal", path, r, goType)
		}
	}
}

// TestFilledPayloadsValidate: a value of each Go type with every field set
// (strings to the schema's first enum value, or "x"; times to now) marshals
// to a payload its schema accepts, and one without a required field is
// refused.
func TestFilledPayloadsValidate(t *testing.T) {
	schemas, err := eventschema.Compile()
	if err != nil {
		t.Fatal(err)
	}
	for typ, goType := range goTypes {
		var doc map[string]any
		raw, _ := eventschema.Raw(typ)
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		v := reflect.New(goType).Elem()
		fill(v, doc)
		data, err := json.Marshal(v.Interface())
		if err != nil {
			t.Fatal(err)
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if err := schemas[typ].Validate(inst); err != nil {
			t.Errorf("%s: a filled %s is refused: %v\n%s", typ, goType, err, data)
		}
		obj := inst.(map[string]any)
		first := doc["required"].([]any)[0].(string)
		delete(obj, first)
		if err := schemas[typ].Validate(obj); err == nil {
			t.Errorf("%s: a payload without %s is accepted", typ, first)
		}
	}
}

// fill sets every field of struct v, as the schema s describes it.
func fill(v reflect.Value, s map[string]any) {
	props, _ := s["properties"].(map[string]any)
	st := v.Type()
	for i := range st.NumField() {
		f := st.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		p, _ := props[name].(map[string]any)
		fillValue(v.Field(i), p)
	}
}

func fillValue(fv reflect.Value, p map[string]any) {
	if fv.Type() == reflect.TypeFor[time.Time]() {
		fv.Set(reflect.ValueOf(time.Now().UTC()))
		return
	}
	switch fv.Kind() {
	case reflect.Pointer:
		fv.Set(reflect.New(fv.Type().Elem()))
		fillValue(fv.Elem(), p)
	case reflect.String:
		s := "x"
		if e, ok := p["enum"].([]any); ok {
			s = e[0].(string)
		}
		fv.SetString(s)
	case reflect.Bool:
		fv.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		fv.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		fv.SetUint(1)
	case reflect.Float32, reflect.Float64:
		fv.SetFloat(0.5)
	case reflect.Slice:
		if fv.Type().Elem().Kind() == reflect.Uint8 {
			fv.SetBytes([]byte{0xff, 0x00})
			return
		}
		fv.Set(reflect.MakeSlice(fv.Type(), 1, 1))
		fillValue(fv.Index(0), nil)
	case reflect.Struct:
		fill(fv, p)
	}
}

// TestSilentProfileIDsAgreeWithTheSchema: the schema describes the
// published outcome, and what ingest accepts as a profileId publishes one
// the schema accepts: surrounding spaces are dropped (as from every string
// of the body), an empty or null one is no profile (the field left out);
// what the pattern refuses, ingest refuses (400 naming profileId).
func TestSilentProfileIDsAgreeWithTheSchema(t *testing.T) {
	schemas, err := eventschema.Compile()
	if err != nil {
		t.Fatal(err)
	}
	schema := schemas[events.TypeSilentOutcome]
	body := func(profile string) []byte {
		return []byte(`{"attemptId":"sa-1","startedAt":"2026-11-22T09:00:00Z","finishedAt":"2026-11-22T09:00:01Z","result":"verified","profileId":` + profile + `}`)
	}
	hash := events.KeyedHash([]byte("test key"))
	receivedAt := time.Date(2026, 11, 22, 9, 0, 2, 0, time.UTC)
	for _, profile := range []string{`"default"`, `"  default "`, `""`, `"   "`, `null`, `"adbe6521-f5bd-4295-9fd9-776debdf7dc2"`, `"a.b_c:d-E9"`, `"` + strings.Repeat("p", 128) + `"`} {
		outs, err := events.DecodeSilentOutcomes(body(profile), receivedAt, hash)
		if err != nil {
			t.Errorf("profileId %s refused: %v", profile, err)
			continue
		}
		data, _ := json.Marshal(outs[0])
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if err := schema.Validate(inst); err != nil {
			t.Errorf("profileId %s publishes %s, which the schema refuses: %v", profile, data, err)
		}
	}
	for _, profile := range []string{`"de fault"`, `"` + strings.Repeat("p", 129) + `"`, `"profé"`, `"a/b"`, `7`} {
		_, err := events.DecodeSilentOutcomes(body(profile), receivedAt, hash)
		var fe *events.FieldError
		if !errors.As(err, &fe) || fe.Field != "profileId" {
			t.Errorf("profileId %s: %v; want refused on profileId", profile, err)
		}
	}
}
