package flagenv

import (
	"flag"
	"strings"
)

// Placeholder marks the values deploy/ ships where each deployment must put
// its own secret (deploy/k8s/secret.yaml): a service started with one
// would accept a token, or use a password, that anyone can read there.
const Placeholder = "REPLACE_ME"

// Placeholders are the flags of fs whose value still holds Placeholder,
// whether the command line, the environment or a file gave it.
func Placeholders(fs *flag.FlagSet) []string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) {
		if strings.Contains(f.Value.String(), Placeholder) {
			names = append(names, f.Name)
		}
	})
	return names
}
