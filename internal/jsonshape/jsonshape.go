// Package jsonshape tells what encoding/json writes of a Go type — its
// members and their JSON types — for the tests that hold a schema (a NATS
// payload's, docs/events; an API answer's, docs/api) to the Go type that
// marshals it.
package jsonshape

import (
	"reflect"
	"strings"
	"time"
)

// Field is one member encoding/json writes of a struct.
type Field struct {
	Name string
	Type reflect.Type
	// Optional: omitempty or omitzero, absent rather than empty.
	Optional bool
}

// Fields are what encoding/json writes of struct type st, an embedded
// struct's members promoted as it does.
func Fields(st reflect.Type) []Field {
	var out []Field
	for f := range st.Fields() {
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		if f.Anonymous && tag == "" {
			out = append(out, Fields(f.Type)...)
			continue
		}
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		out = append(out, Field{name, f.Type, strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero")})
	}
	return out
}

// Options say what a writer of the JSON makes of a Go value beyond its
// type.
type Options struct {
	// NilListsNull: a nil slice or map is written, as null (a payload's);
	// false where the code always makes its lists (the API's answers).
	NilListsNull bool
	// As names the JSON type of Go types that marshal themselves
	// (store.Duration: a number).
	As map[reflect.Type]string
}

// Types are the JSON types encoding/json may write for a value of t, a
// member Optional or not.
func Types(t reflect.Type, optional bool, o Options) []string {
	if as, ok := o.As[t]; ok {
		return []string{as}
	}
	if t == reflect.TypeFor[time.Time]() {
		return []string{"string"}
	}
	orNull := func(jt string) []string {
		if optional || !o.NilListsNull {
			return []string{jt}
		}
		return []string{jt, "null"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		ts := Types(t.Elem(), false, o)
		if !optional {
			ts = append(ts, "null")
		}
		return ts
	case reflect.String:
		return []string{"string"}
	case reflect.Bool:
		return []string{"boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return []string{"integer"}
	case reflect.Float32, reflect.Float64:
		return []string{"number"}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return []string{"string"} // base64
		}
		return orNull("array")
	case reflect.Map:
		return orNull("object")
	case reflect.Struct:
		return []string{"object"}
	}
	return []string{"(" + t.String() + ")"}
}
