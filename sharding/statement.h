// Describes one SQL statement as the router needs it: its kind, the tables it touches, the
// shard-key candidates it constrains (literals or $n parameters), the rows an INSERT writes
// and the facts that decide how scatter-gather results are merged.
//
// A Statement knows nothing about the table map: it names every column constraint it can
// prove, and the router keeps the ones on shard-key columns. It is plain data, built by
// Analyze() (analyzer.h), immutable once built and shared through AnalyzerCache.
//
// Identifiers are stored as PostgreSQL folds them: unquoted names lower-cased, quoted names
// verbatim.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pgring::sharding {

enum class StatementKind {
  kSelect,  // also VALUES, TABLE t, and SELECT without FROM
  kInsert,
  kUpdate,
  kDelete,
  kCopy,
  kDdl,          // CREATE/ALTER/DROP of tables, indexes, schemas, sequences, views...; TRUNCATE
  kTransaction,  // BEGIN/START, COMMIT/END, ROLLBACK/ABORT, SAVEPOINT, RELEASE, 2PC commands
  kSet,          // SET, SET LOCAL, RESET, RESET ALL, SET TRANSACTION / SESSION CHARACTERISTICS
  kShow,
  kPrepare,
  kExecute,
  kDeallocate,
  kListen,
  kUnlisten,
  kNotify,
  kDiscard,
  kExplain,
  kCall,
  kLock,   // LOCK TABLE
  kOther,  // anything else (VACUUM, DO, MERGE, cursors...): assumed to write, except cursors
  kEmpty,  // the query string holds no statement (PostgreSQL answers EmptyQueryResponse)
};

enum class TransactionOp {
  kNone,
  kBegin,     // BEGIN and START TRANSACTION
  kCommit,    // COMMIT and END
  kRollback,  // ROLLBACK and ABORT
  kSavepoint,
  kRelease,
  kRollbackTo,
  kPrepare,  // PREPARE TRANSACTION 'gid'
  kCommitPrepared,
  kRollbackPrepared,
};

// A table as the statement names it. `alias` is empty when the statement gives none.
struct TableRef {
  std::string schema;  // empty when unqualified
  std::string name;
  std::string alias;
  // How many times the statement names this table (a self-join names it twice). The
  // constraints below hold for every one of those references.
  int references = 1;
};

enum class LiteralKind {
  kNone,       // the value is not a literal
  kInteger,    // 42, -7, 9999999999 (any size: PostgreSQL types big ones as bigint/numeric)
  kFloat,      // 1.5, 1e3
  kString,     // 'abc', E'..', $$..$$ (the text holds the decoded characters)
  kBoolean,    // TRUE / FALSE (text "true" / "false")
  kBitString,  // B'101', X'1F' (text as PostgreSQL keeps it: "b101", "x1F")
};

// One value given for a column: a constant, a Bind parameter or something only the server
// can evaluate.
struct KeyValue {
  enum class Kind {
    kLiteral,     // `literal` holds the constant's text, `literal_kind` its lexical kind
    kParam,       // `param` holds n of $n (1-based)
    kNull,        // SQL NULL
    kDefault,     // DEFAULT in an INSERT row
    kExpression,  // anything else (function call, column, operator...): not routable
  };
  Kind kind = Kind::kExpression;
  std::string literal;
  LiteralKind literal_kind = LiteralKind::kNone;
  int param = 0;
  // The last name of an explicit cast around the value, lower-cased in PostgreSQL's internal
  // spelling ('5'::bigint and CAST('5' AS int8) both give "int8"; "int8[]" for arrays).
  std::string cast;
  // The value is an array whose elements are the keys: `col = ANY($1)` or
  // `col = ANY('{1,2}'::int[])`. Elements of ARRAY[...] are expanded instead.
  bool is_array = false;

  bool is_string() const { return literal_kind == LiteralKind::kString; }
};

// "Every row of `table` that the statement reads or changes has `column` equal to one of
// `values`": from `=`, `IN (...)`, `= ANY(...)` and ORs of those on one column, in the
// conjunctive part of WHERE and of inner-join ON clauses (outer-join ON clauses count for
// the nullable side only), and carried across column equalities (`a.k = b.k AND a.k = 5`
// constrains b.k too). Anything under NOT, an OR with other terms, BETWEEN, < or > does not
// constrain. An unqualified column in a FROM list of several tables is given to each of
// them: PostgreSQL resolves it to the only one that has it (or to a USING column), so a
// constraint on a table's shard-key column is always right.
struct ColumnConstraint {
  std::string schema;  // of the table, empty when unqualified
  std::string table;   // table name, aliases resolved
  std::string column;
  std::vector<KeyValue> values;  // never kExpression; a kNull value matches no row
};

// `table1.column1 = table2.column2` somewhere in a join condition, USING list or WHERE
// clause (correlated subqueries included): the router proves co-location with it.
struct ColumnEquality {
  std::string schema1, table1, column1;
  std::string schema2, table2, column2;
};

// The rows an INSERT writes.
struct InsertInfo {
  TableRef table;
  std::vector<std::string> columns;         // empty without a column list (table order then)
  std::vector<std::vector<KeyValue>> rows;  // VALUES rows, one KeyValue per column
  bool from_select = false;     // INSERT ... SELECT (rows empty; the SELECT's facts are in
                                // the Statement's tables and constraints)
  bool default_values = false;  // INSERT ... DEFAULT VALUES
  bool has_on_conflict = false;
  bool on_conflict_update = false;  // ON CONFLICT ... DO UPDATE (else DO NOTHING)
  // Byte range (start, length) of each VALUES row's "( ... )", parentheses included, in the
  // whole analyzed text (like Analysis::ranges); one per entry of `rows`. Empty when the
  // analyzer could not place them (shard_sql.h then refuses to split the INSERT).
  std::vector<std::pair<size_t, size_t>> row_ranges;
};

enum class AggregateFunc { kNone, kCount, kSum, kMin, kMax, kAvg, kOther };

// One entry of the top-level select list.
struct TargetInfo {
  enum class Kind { kColumn, kStar, kAggregate, kOther };
  Kind kind = Kind::kOther;
  std::string name;    // output column name as PostgreSQL would label it ("?column?" if none)
  std::string table;   // kColumn/kStar: the qualifier as written (alias or table), or empty
  std::string column;  // kColumn: the column name
  AggregateFunc aggregate = AggregateFunc::kNone;
  bool agg_star = false;      // count(*)
  bool agg_distinct = false;  // count(DISTINCT x)
  bool agg_filter = false;    // agg(...) FILTER (WHERE ...)
  std::string text;           // normalized expression text ("" when pgring cannot print it)
  bool has_alias = false;     // `expr AS name` or `expr name`
  // Byte offsets in the whole analyzed text: where the entry's expression starts, and for
  // kAggregate where the function name starts. -1 when unknown.
  int location = -1;
  int func_location = -1;
};

// One top-level GROUP BY item.
struct GroupKey {
  // 1-based select-list entry it groups by: `GROUP BY 2` (an output column number, counted
  // after * is expanded), a column named like a plain-column entry's column, or an
  // expression written like an entry. Not an output name: PostgreSQL reads `GROUP BY b`
  // as an input column b when the table has one. 0 when none matches, and for ROLLUP, CUBE
  // and GROUPING SETS.
  int position = 0;
  bool is_number = false;   // GROUP BY n
  int number_location = -1;  // GROUP BY n: byte offset of n in the whole analyzed text
  std::string name;          // an unqualified column name, else empty
};

// One top-level ORDER BY key.
struct OrderKey {
  int position = 0;  // 1-based output column it sorts by, 0 if not in the select list
  std::string text;  // normalized expression text
  bool descending = false;
  bool nulls_first = false;     // explicit, or PostgreSQL's default (first for DESC)
  bool using_operator = false;  // ORDER BY x USING <op>: cannot be merged by pgring
  // ORDER BY n (an output column number, counted after * is expanded): byte offset of n in
  // the whole analyzed text; -1 for any other key.
  int number_location = -1;
};

struct CopyInfo {
  bool is_from = false;   // COPY ... FROM (writes) vs TO
  bool is_query = false;  // COPY (query) TO
  bool stdio = false;     // STDIN / STDOUT (the only form a proxy can relay)
  bool is_program = false;
  std::string filename;  // server-side file or program
  TableRef table;        // empty name for COPY (query)
  std::vector<std::string> columns;
  std::string format = "text";  // text | csv | binary
  bool header = false;          // HEADER, HEADER true/match
  std::optional<std::string> delimiter;
  std::optional<std::string> null_string;
  std::optional<std::string> quote;
  std::optional<std::string> escape;
  bool has_where = false;  // COPY FROM ... WHERE
};

enum class DdlAction { kNone, kCreate, kAlter, kDrop, kRename, kTruncate, kOther };
enum class DdlObject {
  kNone,
  kTable,
  kIndex,
  kSchema,
  kSequence,
  kView,
  kMaterializedView,
  kOther
};

struct DdlInfo {
  DdlAction action = DdlAction::kNone;
  DdlObject object = DdlObject::kNone;
  // Objects that are not tables, as qualified names: index, schema, sequence, view names.
  std::vector<std::string> objects;
  bool if_exists = false;     // IF EXISTS / IF NOT EXISTS
  bool concurrently = false;  // CREATE/DROP INDEX CONCURRENTLY (not in a transaction)
};

enum class DiscardMode { kNone, kAll, kPlans, kSequences, kTemp };

struct Statement {
  StatementKind kind = StatementKind::kEmpty;
  TransactionOp txn_op = TransactionOp::kNone;
  // Changes data or schema: INSERT/UPDATE/DELETE (also inside a CTE), DDL, COPY FROM,
  // CALL, SELECT INTO, EXPLAIN ANALYZE of a write, and every kOther statement but
  // DECLARE/FETCH/CLOSE of cursors.
  bool writes = false;
  // Takes row or table locks: SELECT ... FOR UPDATE/SHARE (anywhere), LOCK TABLE.
  bool locks = false;

  // Every table the statement names (joins, subqueries, CTE bodies, DDL targets), once
  // each by schema and name, in order of appearance. CTE names are not tables.
  std::vector<TableRef> tables;
  std::vector<ColumnConstraint> constraints;
  std::vector<ColumnEquality> joins;
  std::optional<InsertInfo> insert;
  // UPDATE SET targets and INSERT ... ON CONFLICT DO UPDATE SET targets.
  std::vector<std::string> updated_columns;

  // Top-level query shape, for scatter-gather (SELECT; UNION arms combined).
  bool has_aggregates = false;
  bool has_group_by = false;
  bool has_having = false;
  bool has_window_functions = false;
  bool has_distinct = false;
  bool has_distinct_on = false;
  bool has_order_by = false;
  bool has_limit = false;
  bool has_offset = false;
  bool limit_with_ties = false;
  bool has_set_operation = false;  // UNION / INTERSECT / EXCEPT at the top level
  // Anywhere in the statement:
  bool has_subquery = false;  // a sublink (IN/EXISTS/scalar subquery) or subselect in FROM
  bool has_cte = false;
  bool has_returning = false;
  bool uses_advisory_lock = false;     // pg_advisory_*lock* / pg_try_advisory_* calls
  bool session_advisory_lock = false;  // ... of the session-level kind (pins the session)
  std::vector<OrderKey> order_by;
  std::optional<int64_t> limit;  // constant LIMIT / FETCH FIRST n
  std::optional<int64_t> offset;  // (OFFSET NULL, like LIMIT ALL / NULL, counts as absent)
  int limit_param = 0;   // LIMIT $n
  int offset_param = 0;  // OFFSET $n
  // Byte offsets in the whole analyzed text where the LIMIT / FETCH FIRST and the OFFSET
  // value expressions start; -1 when absent or implicit (FETCH FIRST ROW ONLY).
  int limit_location = -1;
  int offset_location = -1;
  std::vector<TargetInfo> targets;
  std::vector<GroupKey> group_by;  // top-level GROUP BY items (none for set operations)

  // SET / RESET / SHOW. `set_name` is lower-cased ("timezone" for SET TIME ZONE,
  // "transaction" and "session characteristics" for SET TRANSACTION forms);
  // `set_value` is the value list as written, joined by ", " (string quotes removed).
  std::string set_name;
  std::string set_value;
  bool set_local = false;
  bool set_default = false;  // SET x TO DEFAULT (same effect as RESET x)
  bool is_reset = false;
  bool reset_all = false;

  // Transaction control: SAVEPOINT / RELEASE / ROLLBACK TO name, or the 2PC gid.
  std::string txn_name;
  bool txn_chain = false;      // COMMIT/ROLLBACK AND CHAIN
  bool txn_read_only = false;  // BEGIN READ ONLY

  // PREPARE name / EXECUTE name / DEALLOCATE [name|ALL] / LISTEN, UNLISTEN, NOTIFY channel.
  std::string name;                            // empty for DEALLOCATE ALL and UNLISTEN *
  std::vector<std::string> prepare_arg_types;  // PREPARE p (int, text): "int4", "text"
  std::vector<KeyValue> execute_args;          // EXECUTE p(1, 'x'): the values of $1, $2...
  std::string notify_payload;
  DiscardMode discard = DiscardMode::kNone;
  std::optional<CopyInfo> copy;
  std::optional<DdlInfo> ddl;
  bool explain_analyze = false;

  // The statement inside PREPARE, EXPLAIN and COPY (query). For EXPLAIN and COPY (query)
  // its tables, constraints and joins are also copied into this statement.
  std::shared_ptr<const Statement> inner;

  // From a comment before the statement: /* pgring: shard_key=VALUE */ (VALUE bare or in
  // single quotes). libpg_query drops comments, so the analyzer reads the text itself.
  std::optional<std::string> hint_shard_key;

  int num_params = 0;  // highest $n referenced
};

}  // namespace pgring::sharding
