package flagenv

import (
	"net/url"
	"strconv"
	"strings"
)

// secretWords mark a flag, or a URL's query parameter, whose value is a
// secret.
var secretWords = []string{"password", "token", "key", "secret"}

// SecretName reports whether a flag's or a variable's name says its value
// is a secret: a password, token, key or secret.
func SecretName(name string) bool {
	name = strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// Shown is a flag's value as a configuration listing may print it, a
// secret's value hidden by the flag's name: passwords, tokens and keys
// entirely, a header's value, and of a URL (or DSN) its password, secret
// query parameters and, for a webhook URL, its path (chat webhooks carry
// their secret there).
func Shown(flagName, value string) string {
	switch {
	case value == "" || value == "[]" || strings.HasSuffix(flagName, "-file") || strings.HasSuffix(flagName, "-dir"):
		return value // a path, not the secret it may lead to
	case SecretName(flagName):
		if n := strings.Count(value, ",") + 1; n > 1 {
			return "(" + strconv.Itoa(n) + " secrets)"
		}
		return "(secret)"
	case strings.HasSuffix(flagName, "-header"):
		k, _, _ := strings.Cut(value, ":")
		return k + ": (secret)"
	case strings.HasSuffix(flagName, "-url") || strings.HasSuffix(flagName, "-dsn") || strings.HasSuffix(flagName, "-routes") || flagName == "api":
		parts := strings.Split(value, ",")
		for i, p := range parts {
			parts[i] = shownURL(strings.TrimSpace(p), strings.Contains(flagName, "webhook"))
		}
		return strings.Join(parts, ",")
	}
	return value
}

// shownURL hides u's password, the values of its query parameters named as
// secrets and, with hidePath, its path and query. What does not parse as a
// URL is hidden whole: it may hold anything.
func shownURL(u string, hidePath bool) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(not a URL, hidden)"
	}
	q := p.Query()
	for k := range q {
		if SecretName(k) {
			q[k] = []string{"xxxxx"}
		}
	}
	p.RawQuery = q.Encode()
	if _, hasPassword := p.User.Password(); p.User != nil && !hasPassword {
		p.User = url.User("xxxxx") // a user alone is a token to NATS (nats://TOKEN@host)
	}
	if hidePath && (p.Path != "" && p.Path != "/" || p.RawQuery != "") {
		p.Path, p.RawPath, p.RawQuery = "", "", ""
		return p.Redacted() + "/…"
	}
	return p.Redacted()
}
