"""BigQuery SQL -> DuckDB SQL for the BigQuery stand-in (test/support/peers/bigquery-standin-sql.ts).

One long-lived process per stand-in, JSON lines over stdin/stdout: each request line

  {"id", "sql", "params": [REST queryParameters], "defaultProject", "defaultDataset"?,
   "tables": {"p.d.t": {"columns": {name: BigQuery type}, "partitionField"?, "view"?: BigQuery SQL}}}

gets one answer line, either

  {"id", "ok": true, "sql": DuckDB SQL, "statementType", "reads": [{"table", "columns", "days"}]}

where `reads` lists the base tables (views expanded) the statement reads, the columns it references
in each, and `days` = null (every partition) or [[lo, hi], ...] (YYYY-MM-DD) when the WHERE pins the
table's DAY partitioning column to constants (=, IN, BETWEEN); or

  {"id", "ok": false, "kind": "syntax" | "notFound" | "invalid", "message"}.

Query parameters (named @name or positional ?) are replaced in the parsed tree by typed literals
(CAST('value' AS TYPE)), never pasted into the text. Needs sqlglot (pinned by .ci/install-test-servers).
"""

import json
import sys

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import traverse_scope


class QueryError(Exception):
    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind
        self.message = message


SCALARS = {
    "STRING": "STRING",
    "INT64": "INT64",
    "INTEGER": "INT64",
    "FLOAT64": "FLOAT64",
    "FLOAT": "FLOAT64",
    "NUMERIC": "NUMERIC",
    "BIGNUMERIC": "BIGNUMERIC",
    "BOOL": "BOOL",
    "BOOLEAN": "BOOL",
    "DATE": "DATE",
    "DATETIME": "DATETIME",
    "TIMESTAMP": "TIMESTAMP",
}


def scalar_type(name):
    if name not in SCALARS:
        raise QueryError("invalid", f"Unsupported query parameter type: {name}")
    return exp.DataType.build(SCALARS[name], dialect="bigquery")


def literal(ptype, pvalue):
    """A typed literal for one REST query parameter (type and value objects)."""
    kind = (ptype or {}).get("type")
    if kind == "ARRAY":
        element = (ptype or {}).get("arrayType") or {}
        values = (pvalue or {}).get("arrayValues")
        if values is None:
            return exp.cast(exp.null(), exp.DataType.build(f"ARRAY<{SCALARS.get(element.get('type'), 'STRING')}>", dialect="bigquery"))
        return exp.Array(expressions=[literal(element, v) for v in values])
    value = (pvalue or {}).get("value")
    target = scalar_type(kind)
    if value is None:
        return exp.cast(exp.null(), target)
    if not isinstance(value, str):
        value = json.dumps(value) if not isinstance(value, (int, float)) else str(value)
    if kind in ("BOOL", "BOOLEAN"):
        if value.lower() not in ("true", "false"):
            raise QueryError("invalid", f"Invalid BOOL value: {value}")
        return exp.Boolean(this=value.lower() == "true")
    if kind in ("INT64", "INTEGER"):
        try:
            int(value)
        except ValueError:
            raise QueryError("invalid", f"Invalid INT64 value: {value}") from None
    return exp.cast(exp.Literal.string(value), target)


def substitute_parameters(tree, params):
    named = {}
    positional = []
    for p in params or []:
        built = literal(p.get("parameterType"), p.get("parameterValue"))
        if p.get("name"):
            named[p["name"].lower()] = built
        else:
            positional.append(built)
    # Depth-first, so in the order they appear in the text (find_all is breadth-first by default).
    placeholders = list(tree.find_all(exp.Placeholder, bfs=False))
    for node in tree.find_all(exp.Parameter):
        name = node.name.lower()
        if name not in named:
            raise QueryError("invalid", f"Query parameter '{node.name}' not found")
        node.replace(named[name].copy())
    if len(placeholders) > len(positional):
        raise QueryError("invalid", "Query has more positional parameters (?) than were supplied")
    for node, value in zip(placeholders, positional):
        node.replace(value.copy())


def cte_names(tree):
    return {cte.alias_or_name for cte in tree.find_all(exp.CTE)}


def qualify_tables(tree, request):
    """Every table reference as project.dataset.table; returns the dotted names referenced."""
    ctes = cte_names(tree)
    project = request.get("defaultProject")
    dataset = request.get("defaultDataset")
    names = []
    for table in tree.find_all(exp.Table):
        if not table.name or (not table.args.get("db") and table.name in ctes):
            continue
        if not table.args.get("db"):
            if not dataset:
                raise QueryError(
                    "invalid",
                    f'Table "{table.name}" must be qualified with a dataset (e.g. dataset.table).',
                )
            table.set("db", exp.to_identifier(dataset, quoted=True))
        if not table.args.get("catalog"):
            table.set("catalog", exp.to_identifier(project, quoted=True))
        for part in ("catalog", "db", "this"):
            table.args[part].set("quoted", True)
        name = f"{table.catalog}.{table.db}.{table.name}"
        if name not in request["tables"]:
            location = request.get("location", "US")
            raise QueryError(
                "notFound",
                f"Not found: Table {table.catalog}:{table.db}.{table.name} was not found in location {location}",
            )
        names.append(name)
    return names


def statement_type(tree):
    if isinstance(tree, exp.Create):
        kind = str(tree.args.get("kind") or "TABLE").upper()
        return f"CREATE_{kind}"
    if isinstance(tree, exp.Drop):
        return f"DROP_{str(tree.args.get('kind') or 'TABLE').upper()}"
    for cls, name in ((exp.Insert, "INSERT"), (exp.Delete, "DELETE"), (exp.Update, "UPDATE"), (exp.Merge, "MERGE")):
        if isinstance(tree, cls):
            return name
    if isinstance(tree, exp.Query):
        return "SELECT"
    return type(tree).__name__.upper()


# ---- what the statement reads (for totalBytesProcessed) ----


def expand_views(tree, request, depth=0):
    """Replaces each view reference by its (qualified) query, so reads are of base tables."""
    if depth > 16:
        raise QueryError("invalid", "Views nested too deeply")
    for table in list(tree.find_all(exp.Table)):
        name = f"{table.catalog}.{table.db}.{table.name}"
        view = request["tables"].get(name, {}).get("view")
        if view is None:
            continue
        inner = sqlglot.parse_one(view, read="bigquery")
        qualify_tables(inner, {**request, "defaultDataset": table.db, "defaultProject": table.catalog})
        inner = expand_views(inner, request, depth + 1)
        table.replace(exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier(table.alias_or_name))))
    return tree


def constant_day(node):
    """'YYYY-MM-DD' when node is a date constant (a string literal, possibly cast), else None."""
    while isinstance(node, (exp.Cast, exp.Paren)):
        node = node.this
    if isinstance(node, exp.Literal) and node.is_string:
        return node.this[:10]
    return None


def pinned_days(where, column_matches):
    """Day ranges the WHERE's top-level conjuncts pin the partition column to, or None."""
    if where is None:
        return None
    ranges = None
    for conjunct in where.this.flatten() if isinstance(where.this, exp.And) else [where.this]:
        found = None
        if isinstance(conjunct, exp.EQ):
            for col, other in ((conjunct.this, conjunct.expression), (conjunct.expression, conjunct.this)):
                day = constant_day(other)
                if column_matches(col) and day:
                    found = [[day, day]]
        elif isinstance(conjunct, exp.In) and column_matches(conjunct.this) and not conjunct.args.get("query"):
            days = [constant_day(e) for e in conjunct.expressions]
            if days and all(days):
                found = [[d, d] for d in days]
        elif isinstance(conjunct, exp.Between) and column_matches(conjunct.this):
            lo, hi = constant_day(conjunct.args.get("low")), constant_day(conjunct.args.get("high"))
            if lo and hi:
                found = [[lo, hi]]
        if found is not None:
            ranges = found if ranges is None else intersect(ranges, found)
    return ranges


def intersect(a, b):
    return [[max(x[0], y[0]), min(x[1], y[1])] for x in a for y in b if max(x[0], y[0]) <= min(x[1], y[1])]


def reads_of(tree, request):
    """[{table, columns, days}] for the base tables the statement reads."""
    if isinstance(tree, exp.Insert) and isinstance(tree.expression, exp.Values):
        return []  # INSERT ... VALUES reads no table: 0 bytes
    tables = request["tables"]
    tree = expand_views(tree.copy(), request)
    schema = {}
    for name, info in tables.items():
        if info.get("view") is None:
            catalog, db, table = name.split(".", 2)
            schema.setdefault(catalog, {}).setdefault(db, {})[table] = {c: t for c, t in info["columns"].items()}
    reads = {}

    def note(name, columns, days):
        entry = reads.setdefault(name, {"columns": set(), "days": []})
        entry["columns"].update(columns)
        if days is None or entry["days"] is None:
            entry["days"] = None
        else:
            entry["days"].extend(days)

    try:
        qualified = qualify(tree, schema=schema, dialect="bigquery", identify=False, validate_qualify_columns=False)
        for scope in traverse_scope(qualified):
            for alias, source in scope.sources.items():
                if not isinstance(source, exp.Table):
                    continue
                name = f"{source.catalog}.{source.db}.{source.name}"
                if name not in tables:
                    continue
                wanted = {c.name for c in scope.columns if c.table == alias}
                known = {c.lower(): c for c in tables[name]["columns"]}
                columns = {known[c.lower()] for c in wanted if c.lower() in known}
                field = tables[name].get("partitionField")
                days = None
                if field:
                    where = scope.expression.args.get("where") if isinstance(scope.expression, exp.Select) else None
                    days = pinned_days(
                        where,
                        lambda col: isinstance(col, exp.Column)
                        and col.name.lower() == field.lower()
                        and col.table in ("", alias),
                    )
                note(name, columns, days)
    except Exception:  # noqa: BLE001 - fall back to every column of every table read
        reads = {}
        for table in tree.find_all(exp.Table):
            name = f"{table.catalog}.{table.db}.{table.name}"
            if name in tables and tables[name].get("view") is None:
                note(name, tables[name]["columns"].keys(), None)
    return [
        {"table": name, "columns": sorted(entry["columns"]), "days": entry["days"]} for name, entry in reads.items()
    ]


def handle(request):
    try:
        trees = sqlglot.parse(request["sql"], read="bigquery")
    except ParseError as error:
        first = error.errors[0] if error.errors else {}
        where = f" at [{first.get('line')}:{first.get('col')}]" if first else ""
        raise QueryError("syntax", f"Syntax error: {first.get('description', str(error))}{where}") from None
    trees = [t for t in trees if t is not None]
    if len(trees) != 1:
        raise QueryError("invalid", "The stand-in runs one statement per query (scripts are not supported)")
    tree = trees[0]
    substitute_parameters(tree, request.get("params"))
    qualify_tables(tree, request)
    kind = statement_type(tree)
    reads = reads_of(tree, request) if kind in ("SELECT", "INSERT", "UPDATE", "DELETE", "MERGE") else []
    return {"sql": tree.sql(dialect="duckdb"), "statementType": kind, "reads": reads}


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        try:
            answer = {"id": request.get("id"), "ok": True, **handle(request)}
        except QueryError as error:
            answer = {"id": request.get("id"), "ok": False, "kind": error.kind, "message": error.message}
        except Exception as error:  # noqa: BLE001 - reported to the stand-in, which answers 400
            answer = {"id": request.get("id"), "ok": False, "kind": "invalid", "message": f"{type(error).__name__}: {error}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
