"""Bounds every API input is checked against before any work: database integer ranges and how deep a
JSON body may nest (Python's decoder recurses, so a body nested ~1,000 deep would otherwise be a 500)."""

MAX_INT = 2**31 - 1  # PostgreSQL integer / PositiveIntegerField
MAX_ID = 2**63 - 1  # bigint primary keys
MAX_JSON_DEPTH = 32  # the deepest real request (a sweep spec) nests 4 levels
