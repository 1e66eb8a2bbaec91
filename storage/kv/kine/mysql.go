package kine

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// kine's mysql driver makes its table with `name VARCHAR(630) CHARACTER SET ascii`, whose
// collation (ascii_general_ci) compares letters without case, orders 'a' before '_', and
// pads with spaces, so that "k" and "k " are equal and "k\x01" sorts before "k". kv's keys
// are bytes in byte order: a range scan then misses keys and a count finds ghosts. The
// driver leaves an existing table alone, so Open makes it first with the same columns and
// indexes but `name VARBINARY(630)`, which compares bytes with no padding on MariaDB and
// MySQL alike, and converts a table an earlier run made with kine's text column.

var mysqlSchema = []string{
	`CREATE TABLE IF NOT EXISTS kine (
		id BIGINT UNSIGNED AUTO_INCREMENT,
		name VARBINARY(630),
		created INTEGER,
		deleted INTEGER,
		create_revision BIGINT UNSIGNED,
		prev_revision BIGINT UNSIGNED,
		lease INTEGER,
		value MEDIUMBLOB,
		old_value MEDIUMBLOB,
		PRIMARY KEY (id))`,
	`CREATE INDEX kine_name_index ON kine (name)`,
	`CREATE INDEX kine_name_id_index ON kine (name,id)`,
	`CREATE INDEX kine_id_deleted_index ON kine (id,deleted)`,
	`CREATE INDEX kine_prev_revision_index ON kine (prev_revision)`,
	`CREATE UNIQUE INDEX kine_name_prev_revision_uindex ON kine (name, prev_revision)`,
}

// prepareMySQL creates the database and kine's table with a binary key column, or converts
// the key column of a table kine made.
func prepareMySQL(ctx context.Context, endpoint string) error {
	cfg, err := mysql.ParseDSN(strings.TrimPrefix(endpoint, "mysql://"))
	if err != nil {
		return fmt.Errorf("mysql endpoint: %v", err)
	}
	if cfg.DBName == "" {
		cfg.DBName = "kubernetes" // kine's default
	}
	dbName := cfg.DBName
	if strings.ContainsAny(dbName, "`\x00") {
		return fmt.Errorf("mysql database name %q: no backquote or NUL", dbName)
	}
	server := cfg.Clone()
	server.DBName = ""
	if err := withDB(ctx, server, func(db *sql.DB) error {
		// Created only when missing: a user without the CREATE privilege may own an
		// existing database, and CREATE ... IF NOT EXISTS checks the privilege first.
		var one int
		err := db.QueryRowContext(ctx, "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", dbName).Scan(&one)
		if err == nil {
			return nil
		}
		if err != sql.ErrNoRows {
			return err
		}
		_, err = db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS `"+dbName+"`")
		return err
	}); err != nil {
		return err
	}
	return withDB(ctx, cfg, func(db *sql.DB) error {
		var typ string
		err := db.QueryRowContext(ctx, `SELECT DATA_TYPE FROM information_schema.COLUMNS
			WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'kine' AND COLUMN_NAME = 'name'`).Scan(&typ)
		switch {
		case err == sql.ErrNoRows:
			for _, stmt := range mysqlSchema {
				if _, err := db.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("create kine's table: %v", err)
				}
			}
			return nil
		case err != nil:
			return err
		case strings.EqualFold(typ, "varbinary"):
			return nil
		}
		if _, err := db.ExecContext(ctx, `ALTER TABLE kine MODIFY COLUMN name VARBINARY(630)`); err != nil {
			return fmt.Errorf("convert kine's name column to bytes: %v", err)
		}
		return nil
	})
}

func withDB(ctx context.Context, cfg *mysql.Config, fn func(*sql.DB) error) error {
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	return fn(db)
}
