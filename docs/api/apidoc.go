// Package apidoc holds openapi.json, the OpenAPI 3.1 description of
// otpscope's HTTP API: the admin listener's JSON API, /healthz, /readyz and
// /metrics, and the public listener's webhooks. The admin listener serves
// it at Path. Package contract (docs/api/contract) compiles its schemas: apart, so that
// the binaries serving the document do not link a JSON Schema validator.
package apidoc

import _ "embed"

//go:embed openapi.json
var document []byte

// Path is where the admin listener serves the document.
const Path = "/api/v1/openapi.json"

// Raw is the document.
func Raw() []byte { return document }
