#pragma once
// The numbered schema migrations of the embedded store. Migration N (1-based)
// brings the schema from version N-1 to N; PRAGMA user_version records N.
// Never edit a released migration: append a new one.

#include <array>

namespace nimbus::store {

inline constexpr std::array<const char*, 6> kMigrations = {
    // 1: functions ($LATEST configuration as a document).
    R"sql(
    CREATE TABLE functions (
      name         TEXT PRIMARY KEY,
      document     TEXT NOT NULL,
      revision_id  TEXT NOT NULL,
      code_sha256  TEXT NOT NULL,
      code_size    INTEGER NOT NULL,
      created_ms   INTEGER NOT NULL,
      updated_ms   INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX functions_code ON functions(code_sha256);
    )sql",
    // 2: published versions (immutable snapshots) and small documents that
    // belong to one function (aliases, provisioned concurrency, ...); both go
    // when their function goes.
    R"sql(
    CREATE TABLE versions (
      function     TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
      version      INTEGER NOT NULL,
      document     TEXT NOT NULL,
      code_sha256  TEXT NOT NULL,
      code_size    INTEGER NOT NULL,
      created_ms   INTEGER NOT NULL,
      PRIMARY KEY (function, version)
    ) WITHOUT ROWID;
    CREATE INDEX versions_code ON versions(code_sha256);
    CREATE TABLE function_resources (
      function     TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
      kind         TEXT NOT NULL,
      key          TEXT NOT NULL,
      document     TEXT NOT NULL,
      revision_id  TEXT NOT NULL,
      PRIMARY KEY (function, kind, key)
    ) WITHOUT ROWID;
    )sql",
    // 3: gateway routes (one document per route key) and gateway settings (CORS).
    R"sql(
    CREATE TABLE gateway_routes (
      route_key    TEXT PRIMARY KEY,
      document     TEXT NOT NULL,
      updated_ms   INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE gateway_settings (
      name         TEXT PRIMARY KEY,
      document     TEXT NOT NULL
    ) WITHOUT ROWID;
    )sql",
    // 4: asynchronous invocations (Invoke with InvocationType Event, and
    // destination deliveries): claimed by state and due time, listed newest
    // first. No foreign key: an invocation outlives its function's deletion
    // long enough to fail visibly.
    R"sql(
    CREATE TABLE async_invocations (
      seq              INTEGER PRIMARY KEY,
      id               TEXT NOT NULL UNIQUE,
      function         TEXT NOT NULL,
      qualifier        TEXT NOT NULL,
      payload          TEXT NOT NULL,
      state            TEXT NOT NULL,
      attempts         INTEGER NOT NULL,
      next_attempt_ms  INTEGER NOT NULL,
      created_ms       INTEGER NOT NULL,
      updated_ms       INTEGER NOT NULL,
      last_error       TEXT NOT NULL,
      document         TEXT NOT NULL
    );
    CREATE INDEX async_due ON async_invocations(state, next_attempt_ms);
    CREATE INDEX async_function ON async_invocations(function, seq);
    )sql",
    // 5: schedules (rate/cron/at) and where each one stands: the next fire
    // time (-1: never again) and the last one (-1: not yet).
    R"sql(
    CREATE TABLE schedules (
      name          TEXT PRIMARY KEY,
      expression    TEXT NOT NULL,
      timezone      TEXT NOT NULL,
      function      TEXT NOT NULL,
      qualifier     TEXT NOT NULL,
      input         TEXT,
      enabled       INTEGER NOT NULL,
      created_ms    INTEGER NOT NULL,
      next_fire_ms  INTEGER NOT NULL,
      last_fire_ms  INTEGER NOT NULL
    ) WITHOUT ROWID;
    )sql",
    // 6: ended async invocations found by state and end time, for pruning.
    R"sql(
    CREATE INDEX async_ended ON async_invocations(state, updated_ms);
    )sql",
};

}  // namespace nimbus::store
