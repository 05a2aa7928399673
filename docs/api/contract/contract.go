// Package contract compiles docs/api/openapi.json (package apidoc) so that
// tests can hold otpscope's HTTP answers to it: tests check that every
// route the listeners serve is documented and every documented one served,
// and validate every answer a running otpscope gives against the schema of
// its route, status and media type.
package contract

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"mime"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	apidoc "github.com/otpscope/otpscope/docs/api"
)

// url names the document to the schema compiler: its $refs
// (#/components/schemas/…) resolve within it.
const url = "otpscope:openapi.json"

// Operation is one method of one path.
type Operation struct {
	Method string // upper case: GET, POST…
	Path   string // the path template: /api/v1/otps/{otpId}
	ID     string // operationId
	// Statuses are the statuses documented, as written: "200", "4XX"…
	Statuses []string
	// Query are the query parameters' names, in the document's order.
	Query []string
}

// Doc is the document with every schema compiled.
type Doc struct {
	root       map[string]any
	operations []Operation
	// responses: per "METHOD path status", the media types documented,
	// each with its schema (nil: not JSON, its body not validated).
	responses map[string]map[string]*jsonschema.Schema
	// requests: per "METHOD path", the request body's media types, as
	// responses.
	requests map[string]map[string]*jsonschema.Schema
	// components are components.schemas, by name.
	components map[string]*jsonschema.Schema
}

// Compile compiles every schema of the document, with formats and base64
// content asserted, resolving every $ref (of schemas, responses,
// parameters and headers): an error names where one does not.
func Compile() (*Doc, error) {
	var root map[string]any
	if err := json.Unmarshal(apidoc.Raw(), &root); err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(apidoc.Raw()))
	if err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.AssertContent()
	if err := c.AddResource(url, inst); err != nil {
		return nil, fmt.Errorf("openapi.json: %w", err)
	}
	d := &Doc{root: root, responses: map[string]map[string]*jsonschema.Schema{}, requests: map[string]map[string]*jsonschema.Schema{}, components: map[string]*jsonschema.Schema{}}
	compile := func(ptr string) (*jsonschema.Schema, error) {
		s, err := c.Compile(url + "#" + ptr)
		if err != nil {
			return nil, fmt.Errorf("openapi.json#%s: %w", ptr, err)
		}
		return s, nil
	}
	components, _ := root["components"].(map[string]any)
	schemas, _ := components["schemas"].(map[string]any)
	for name := range schemas {
		if d.components[name], err = compile("/components/schemas/" + escape(name)); err != nil {
			return nil, err
		}
	}
	paths, _ := root["paths"].(map[string]any)
	for _, path := range sortedKeys(paths) {
		item, _ := paths[path].(map[string]any)
		for _, method := range sortedKeys(item) {
			o, ok := item[method].(map[string]any)
			if !ok || !isMethod(method) {
				continue
			}
			ptr := "/paths/" + escape(path) + "/" + method
			id, _ := o["operationId"].(string)
			op := Operation{Method: strings.ToUpper(method), Path: path, ID: id}
			if op.Query, err = d.compileParameters(o, ptr, compile); err != nil {
				return nil, err
			}
			if body, ok := o["requestBody"].(map[string]any); ok {
				if d.requests[op.Method+" "+path], err = d.content(body, ptr+"/requestBody", compile); err != nil {
					return nil, err
				}
			}
			responses, _ := o["responses"].(map[string]any)
			for _, status := range sortedKeys(responses) {
				op.Statuses = append(op.Statuses, status)
				rptr := ptr + "/responses/" + escape(status)
				resp, rptr, err := d.resolve(responses[status], rptr)
				if err != nil {
					return nil, err
				}
				if err := d.headers(resp, rptr); err != nil {
					return nil, err
				}
				media, err := d.content(resp, rptr, compile)
				if err != nil {
					return nil, err
				}
				d.responses[op.Method+" "+path+" "+status] = media
			}
			d.operations = append(d.operations, op)
		}
	}
	return d, nil
}

// Operations are the document's operations, by path and method.
func (d *Doc) Operations() []Operation { return d.operations }

// Schema is the compiled components.schemas entry name, or nil.
func (d *Doc) Schema(name string) *jsonschema.Schema { return d.components[name] }

// Validate checks an answer of the operation at method and path (the
// template, as documented) against the document: its status and media type
// documented, and a JSON body (application/json, problem+json) valid
// against the schema of that status and media type. Bodies of other media
// types (text/plain, text/event-stream) are not read.
func (d *Doc) Validate(method, path string, status int, contentType string, body []byte) error {
	media, ok := d.responses[strings.ToUpper(method)+" "+path+" "+strconv.Itoa(status)]
	if !ok {
		return fmt.Errorf("%s %s: status %d is not documented", method, path, status)
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("%s %s %d: Content-Type %q: %w", method, path, status, contentType, err)
	}
	schema, ok := media[mt]
	if !ok {
		return fmt.Errorf("%s %s %d: Content-Type %s is not documented (%v)", method, path, status, mt, sortedKeys(media))
	}
	if schema == nil {
		return nil
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s %s %d: not JSON: %w", method, path, status, err)
	}
	if err := schema.Validate(inst); err != nil {
		return fmt.Errorf("%s %s %d: %w", method, path, status, err)
	}
	return nil
}

// ValidateRequest checks a request body of the operation at method and
// path against the document: a JSON body valid against the request body's
// schema of its media type. An operation documented without a body, or a
// media type it does not document, is an error.
func (d *Doc) ValidateRequest(method, path, contentType string, body []byte) error {
	media, ok := d.requests[strings.ToUpper(method)+" "+path]
	if !ok {
		return fmt.Errorf("%s %s: no request body is documented", method, path)
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("%s %s: request Content-Type %q: %w", method, path, contentType, err)
	}
	schema, ok := media[mt]
	if !ok {
		return fmt.Errorf("%s %s: request Content-Type %s is not documented (%v)", method, path, mt, sortedKeys(media))
	}
	if schema == nil {
		return nil
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s %s: request not JSON: %w", method, path, err)
	}
	if err := schema.Validate(inst); err != nil {
		return fmt.Errorf("%s %s request: %w", method, path, err)
	}
	return nil
}

// resolve follows v's $ref within the document (a response, parameter or
// header of components), returning the object and its pointer.
func (d *Doc) resolve(v any, ptr string) (map[string]any, string, error) {
	for range 8 {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, ptr, fmt.Errorf("openapi.json#%s: not an object", ptr)
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m, ptr, nil
		}
		target, ok := strings.CutPrefix(ref, "#")
		if !ok {
			return nil, ptr, fmt.Errorf("openapi.json#%s: $ref %s is not within the document", ptr, ref)
		}
		if v, ok = d.lookup(target); !ok {
			return nil, ptr, fmt.Errorf("openapi.json#%s: $ref %s resolves to nothing", ptr, ref)
		}
		ptr = target
	}
	return nil, ptr, fmt.Errorf("openapi.json#%s: $refs too deep", ptr)
}

// lookup is the value at JSON pointer ptr.
func (d *Doc) lookup(ptr string) (any, bool) {
	var v any = d.root
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")]; !ok {
			return nil, false
		}
	}
	return v, true
}

// content compiles the schemas of obj's content (a response or request
// body), by media type: nil for those that are not JSON.
func (d *Doc) content(obj map[string]any, ptr string, compile func(string) (*jsonschema.Schema, error)) (map[string]*jsonschema.Schema, error) {
	out := map[string]*jsonschema.Schema{}
	content, _ := obj["content"].(map[string]any)
	for _, mt := range sortedKeys(content) {
		m, _ := content[mt].(map[string]any)
		out[mt] = nil
		if _, ok := m["schema"]; !ok {
			continue
		}
		s, err := compile(ptr + "/content/" + escape(mt) + "/schema")
		if err != nil {
			return nil, err
		}
		if mt == "application/json" || strings.HasSuffix(mt, "+json") {
			out[mt] = s
		}
	}
	return out, nil
}

func (d *Doc) headers(resp map[string]any, ptr string) error {
	headers, _ := resp["headers"].(map[string]any)
	for _, name := range sortedKeys(headers) {
		if _, _, err := d.resolve(headers[name], ptr+"/headers/"+escape(name)); err != nil {
			return err
		}
	}
	return nil
}

// compileParameters compiles op's parameters' schemas and returns the
// names of those in the query.
func (d *Doc) compileParameters(op map[string]any, ptr string, compile func(string) (*jsonschema.Schema, error)) (query []string, err error) {
	params, _ := op["parameters"].([]any)
	for i, p := range params {
		param, pptr, err := d.resolve(p, ptr+"/parameters/"+strconv.Itoa(i))
		if err != nil {
			return nil, err
		}
		if _, ok := param["schema"]; ok {
			if _, err := compile(pptr + "/schema"); err != nil {
				return nil, err
			}
		}
		if name, _ := param["name"].(string); param["in"] == "query" {
			query = append(query, name)
		}
	}
	return query, nil
}

func isMethod(s string) bool {
	return slices.Contains([]string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}, s)
}

// escape makes s one token of a JSON pointer.
func escape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// sortedKeys are m's keys in order: the document read the same way each time.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
