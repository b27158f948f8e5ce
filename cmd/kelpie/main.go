// Command kelpie runs the Kelpie server: stateful AI agents as virtual
// actors, behind the Letta REST API.
//
// Usage:
//
//	kelpie serve [--addr host:port] [--data-dir dir] [--storage spec]
//	kelpie version
//
// Each serve flag may also be set through the environment (KELPIE_ADDR,
// KELPIE_DATA_DIR, KELPIE_STORAGE); a flag given on the command line wins.
// The version is set at link time with
//
//	-ldflags "-X github.com/kelpie-ai/kelpie/api.Version=v1.2.3"
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/kelpie-ai/kelpie/api"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// run executes the command line args and returns the process exit code.
func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	root := newRootCmd(stdout, stderr, getenv)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		var u *usageError
		if errors.As(err, &u) {
			fmt.Fprintf(stderr, "kelpie: %v\nRun 'kelpie --help' for usage.\n", err)
			return 2
		}
		fmt.Fprintf(stderr, "kelpie: %v\n", err)
		return 1
	}
	return 0
}

// usageError marks a command-line mistake (exit code 2).
type usageError struct{ err error }

func (u *usageError) Error() string { return u.err.Error() }
func (u *usageError) Unwrap() error { return u.err }

// newRootCmd builds the kelpie command tree.
func newRootCmd(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	root := &cobra.Command{
		Use:   "kelpie",
		Short: "Kelpie: stateful AI agents as virtual actors, behind the Letta API",
		Long: `Kelpie is a server for stateful AI agents. Each agent is a virtual actor,
activated on demand and persisted on every change. The server speaks the Letta
REST API, so Letta clients work against it unchanged.

Start a server with 'kelpie serve'.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return &usageError{fmt.Errorf("unknown command %q", args[0])}
			}
			return nil
		},
		Version:       api.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Without a subcommand, show help rather than failing.
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate("kelpie {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.AddCommand(newVersionCmd(), newServeCmd(stderr, getenv), newSimCmd(stdout, stderr), newFakeLLMCmd(stderr, getenv), newAgentsCmd(stdout, getenv), newChatCmd(stdout, stderr, getenv), newBenchCmd(stdout, stderr, getenv))
	return root
}

// noArgs rejects positional arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return &usageError{fmt.Errorf("%s takes no arguments, got %q", cmd.CommandPath(), args)}
	}
	return nil
}

// newVersionCmd builds `kelpie version`.
func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the Kelpie version",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "kelpie %s\n", api.Version)
			return err
		},
	}
}
