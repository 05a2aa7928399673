package flagenv

import (
	"flag"
	"slices"
)

// Group is a named set of flags, the way the README's configuration tables
// group them (Process, NATS, Ingest, …), for help.
type Group struct {
	Name  string
	Flags []string
}

// Groups are the groups of one FlagSet, in the order they were registered.
type Groups []Group

// Add runs register and files every flag it added to fs under name (after
// the group's earlier flags when name is already a group).
func (g *Groups) Add(fs *flag.FlagSet, name string, register func()) {
	before := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { before[f.Name] = true })
	register()
	var added []string
	fs.VisitAll(func(f *flag.Flag) {
		if !before[f.Name] {
			added = append(added, f.Name)
		}
	})
	i := slices.IndexFunc(*g, func(gr Group) bool { return gr.Name == name })
	if i < 0 {
		*g = append(*g, Group{Name: name})
		i = len(*g) - 1
	}
	(*g)[i].Flags = append((*g)[i].Flags, added...)
}

// Of is the name of the group flag is in, or "".
func (g Groups) Of(flag string) string {
	for _, gr := range g {
		if slices.Contains(gr.Flags, flag) {
			return gr.Name
		}
	}
	return ""
}
