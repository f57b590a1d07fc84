package zerobustest

import (
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/pyzerobus/pyzerobus/zbwrap/zerobustest/internal/lake"
)

// Column declares a table column with its Delta type.
type Column struct {
	Name string `json:"name" yaml:"name"`
	// Type is Spark / Unity Catalog type text, case-insensitive: "bigint",
	// "string", "decimal(10,2)", "timestamp", "array<string>",
	// "map<string,int>", "struct<a:int,b:string not null>", "variant".
	Type string `json:"type" yaml:"type"`
	// Nullable says whether the column may hold NULL. Note that the Go zero
	// value is NOT NULL.
	Nullable bool `json:"nullable" yaml:"nullable"`
}

// lakeColumns converts declared columns to storage columns.
func lakeColumns(cols []Column) ([]lake.Column, error) {
	out := make([]lake.Column, len(cols))
	for i, c := range cols {
		t, err := lake.ParseType(c.Type)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", c.Name, err)
		}
		out[i] = lake.Column{Name: c.Name, Type: t, Nullable: c.Nullable}
	}
	if err := lake.ValidateColumns(out); err != nil {
		return nil, err
	}
	return out, nil
}

// ReadTable reads the Delta table catalog.schema.table under a server's data
// directory, as materialized so far. The caller releases the table.
func ReadTable(dataDir, table string) (arrow.Table, error) {
	if err := validTableName(table); err != nil {
		return nil, err
	}
	return lake.ReadTable(dataDir, table)
}

// canon is the canonical form of a table name: Unity Catalog names are
// case-insensitive.
func canon(name string) string { return strings.ToLower(name) }

// validTableName checks catalog.schema.table: three parts of ASCII letters,
// digits and underscores, none starting with a digit.
func validTableName(name string) error {
	parts := strings.Split(name, ".")
	if len(parts) != 3 {
		return fmt.Errorf("table name %q is not catalog.schema.table", name)
	}
	for _, p := range parts {
		if !validPart(p) {
			return fmt.Errorf("table name %q: part %q must be ASCII letters, digits and underscores", name, p)
		}
	}
	return nil
}

func validPart(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
