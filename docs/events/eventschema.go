// Package eventschema holds the JSON Schemas (draft 2020-12) of the payloads
// otpscope publishes on NATS, one file per CloudEvents type, named
// <ce-type>.schema.json: the contract for downstream subscribers. Tests hold
// them to the Go types that marshal the payloads, and every message a
// running otpscope publishes to them.
package eventschema

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed *.schema.json
var files embed.FS

// suffix ends every schema's file name.
const suffix = ".schema.json"

// Types are the CloudEvents types that have a schema.
func Types() []string {
	names, _ := fs.Glob(files, "*"+suffix) // the pattern is valid
	types := make([]string, len(names))
	for i, n := range names {
		types[i] = strings.TrimSuffix(n, suffix)
	}
	return types
}

// Raw is the schema document of ceType.
func Raw(ceType string) ([]byte, error) {
	return files.ReadFile(ceType + suffix)
}

// Compile compiles every schema, with formats (date-time) asserted, by
// CloudEvents type.
func Compile() (map[string]*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	c.AssertContent()
	out := map[string]*jsonschema.Schema{}
	for _, t := range Types() {
		raw, err := Raw(t)
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("%s%s: %w", t, suffix, err)
		}
		url := "otpscope:" + t
		if err := c.AddResource(url, doc); err != nil {
			return nil, fmt.Errorf("%s%s: %w", t, suffix, err)
		}
		if out[t], err = c.Compile(url); err != nil {
			return nil, fmt.Errorf("%s%s: %w", t, suffix, err)
		}
	}
	return out, nil
}
