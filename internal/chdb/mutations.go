package chdb

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// mutationHeader is how every mutation file the engine writes begins.
const mutationHeader = "format version: 1\n"

// removeUnreadableMutations deletes the mutation files of dir's tables
// that the engine could not read back: written as the disk filled (empty,
// or cut short), they stop it from attaching the table, and so from
// starting at all. What such a file held is lost: otpscope's own
// mutations are the rollup job's deletes of replaced rows, which readers
// skip anyway and its next run repeats, and an operator's deletes of dead
// letters, which the warning asks to repeat. The engine writes a mutation
// as tmp_mutation_N.txt and renames it whole, so no file of a running
// engine is taken for cut.
func removeUnreadableMutations(dir string, logger *slog.Logger) {
	files, _ := filepath.Glob(filepath.Join(dir, "store", "*", "*", "mutation_*.txt"))
	if len(files) == 0 {
		return
	}
	tables := tableNames(dir)
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil || wholeMutation(data) {
			continue
		}
		table := tables[filepath.Base(filepath.Dir(path))]
		if err := os.Remove(path); err != nil {
			logger.Error("an unreadable mutation file stops the embedded engine from starting and could not be removed", "file", path, "table", table, "err", err)
			continue
		}
		logger.Warn("removed a mutation file the engine could not read (written as the disk filled); the change it held is lost: the rollup job repeats its deletes, a dead letters' delete of that time is to be repeated",
			"file", path, "table", table, "bytes", len(data))
	}
}

// wholeMutation says whether data has every line of a mutation file
// (MergeTreeMutationEntry): its header, create time and commands, ended by
// a line break.
func wholeMutation(data []byte) bool {
	return bytes.HasPrefix(data, []byte(mutationHeader+"create time: ")) && bytes.Contains(data, []byte("\ncommands: ")) && bytes.HasSuffix(data, []byte("\n"))
}

// tableUUID finds a table's UUID in its metadata file.
var tableUUID = regexp.MustCompile(`UUID '([0-9a-f-]{36})'`)

// tableNames maps the UUIDs of dir's tables, which name their data
// directories under store/, to database.table.
func tableNames(dir string) map[string]string {
	names := map[string]string{}
	files, _ := filepath.Glob(filepath.Join(dir, "metadata", "*", "*.sql"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if m := tableUUID.FindSubmatch(data); m != nil {
			names[string(m[1])] = filepath.Base(filepath.Dir(f)) + "." + strings.TrimSuffix(filepath.Base(f), ".sql")
		}
	}
	return names
}
