"""Quoting for SQL built in Python: every identifier or literal that comes from a variable goes
through these, so a table name or a data-home path with a quote in it stays one token."""


def quote_ident(name: str) -> str:
    """ "name" with embedded double quotes doubled (DuckDB, SQLite and ANSI SQL)."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """'text' with embedded single quotes doubled."""
    return "'" + text.replace("'", "''") + "'"
