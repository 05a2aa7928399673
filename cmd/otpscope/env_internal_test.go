package main

import (
	"io"
	"testing"

	"github.com/otpscope/otpscope/internal/app"
	"github.com/otpscope/otpscope/internal/cli"
)

// One environment file serves every binary: the variables the one-shot
// commands read are known to the others, which do not warn of them.
func TestOneShotCommandsEnvIsKnown(t *testing.T) {
	for name, c := range map[string]cli.Command{
		"deadletters": deadLettersCommand("list", io.Discard), "backup": backupCommand("create", io.Discard), "alerts": alertsCommand("test", io.Discard),
		"restore": restoreCommand(io.Discard), "status": statusCommand(io.Discard),
	} {
		if unknown := app.UnknownEnv(c); len(unknown) > 0 {
			t.Errorf("otpscope %s reads %v, which other binaries would warn of (app.cmdEnv)", name, unknown)
		}
	}
}
