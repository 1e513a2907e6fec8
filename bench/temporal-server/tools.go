//go:build tools

// The production Temporal server, built from its published Go module for the benchmark's
// PostgreSQL anchor (scripts/temporal-server). This file only pins the two commands in go.mod;
// nothing of Temporal's is copied here.
package tools

import (
	_ "go.temporal.io/server/cmd/server"
	_ "go.temporal.io/server/cmd/tools/sql"
)
