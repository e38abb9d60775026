"""A seeded generator of GraphQL operations from the schema itself, for fuzzing the API.

Beside the hypothesis-graphql fuzzing in test_fuzz_hypothesis.py (schema-valid and schema-broken
documents, shrunk on failure), this generator aims at what that one does not: real IDs taken
from the panels, and hostile values sent as variables. It is seeded and reproducible: a failure
prints the seed, the document and the variables. (An earlier hypothesis release broke pytest's
assertion rewriting on this Python, which is why this came first.)

Each operation picks random root fields, random subsets of arguments and selections, and
values that are mostly well-typed but often hostile: garbage and foreign IDs, huge and negative
numbers, long and odd strings, unknown enum names, missing required fields, nulls where the
schema says non-null, and values of the wrong type, either inline or as variables.
"""

from __future__ import annotations

import base64
import json
import random
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    get_named_type,
)

HUGE_INTS = [0, 1, -1, 2**31 - 1, 2**31, -(2**31) - 1, 2**63, 10**30, -(10**30)]
FLOATS = [0.0, -0.5, 1e308, -1e308, 3.14159, 1e-300]
STRINGS = ["", "x", "a" * 5000, "ünïcødé ✓", "'; DROP TABLE servers; --", "\u0000\u001f",
           "<script>alert(1)</script>", "../../etc/passwd", "{{7*7}}", "null", "19.99",
           "2024-01-01T00:00:00Z", "not-a-date", "-1", "1e999"]
WRONG = [True, 3, -7.5, "str", [], [1, 2], {"a": 1}, None]


def _garbage_ids() -> list[str]:
    def b64(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).decode()

    return ["", "x", "%%%", "=" * 10, "U2VydmVy", b64("Server:nowhere:1"),
            b64("Server:catalyst-main:"), b64("Node:catalyst-main:no-such-node"),
            b64("Invoice:catalyst-main:in_1"), b64("Nonsense:a:b:c:d"), b64("\x00\xff"),
            b64("Server:" + "a" * 300 + ":1"), "Server:catalyst-main:1", "🦄" * 5]


@dataclass
class Operation:
    document: str
    variables: dict[str, Any] = field(default_factory=dict)


class QueryGen:
    def __init__(self, schema: GraphQLSchema, seed: int, known_ids: list[str] | None = None,
                 *, max_depth: int = 4, wrong_rate: float = 0.08) -> None:
        self.schema = schema
        self.rng = random.Random(seed)
        self.ids = list(known_ids or []) + _garbage_ids()
        self.max_depth = max_depth
        self.wrong_rate = wrong_rate
        self._variables: dict[str, Any] = {}
        self._declared: list[str] = []

    # -- operations ---------------------------------------------------------------------------
    def operation(self, kind: str) -> Operation:
        root = self.schema.mutation_type if kind == "mutation" else self.schema.query_type
        assert root is not None
        self._variables, self._declared = {}, []
        names = sorted(root.fields)
        picked = self.rng.sample(names, k=min(len(names), self.rng.randint(1, 3)))
        parts = [self._field(name, root.fields[name], 1) for name in picked]
        header = f"({', '.join(self._declared)})" if self._declared else ""
        return Operation(f"{kind} Fuzz{header} {{ {' '.join(parts)} }}", self._variables)

    def _field(self, name: str, definition: GraphQLField, depth: int) -> str:
        args = []
        for arg_name, arg in sorted(definition.args.items()):
            required = isinstance(arg.type, GraphQLNonNull)
            if required and self.rng.random() < 0.03:
                continue  # a missing required argument
            if required or self.rng.random() < 0.5:
                args.append(f"{arg_name}: {self._argument(arg_name, arg.type)}")
        text = name + (f"({', '.join(args)})" if args else "")
        return text + self._selection(definition.type, depth)

    def _argument(self, name: str, type_: GraphQLInputType) -> str:
        value = self.value(type_)
        if self.rng.random() < 0.4:
            var = f"v{len(self._declared)}"
            declared = str(type_) if self.rng.random() > 0.05 else self.rng.choice(
                ["Int", "String!", "[ID]", "Boolean"])  # sometimes a variable of the wrong type
            self._declared.append(f"${var}: {declared}")
            self._variables[var] = value
            return f"${var}"
        return self.literal(value, type_)

    def _selection(self, type_: GraphQLOutputType, depth: int) -> str:
        named = get_named_type(type_)
        if isinstance(named, GraphQLScalarType | GraphQLEnumType):
            return ""
        if isinstance(named, GraphQLInterfaceType | GraphQLUnionType):
            return "{ __typename }"
        assert isinstance(named, GraphQLObjectType)
        fields = sorted(named.fields.items())
        if depth >= self.max_depth:
            leaves = [(n, f) for n, f in fields
                      if isinstance(get_named_type(f.type), GraphQLScalarType | GraphQLEnumType)
                      and not any(isinstance(a.type, GraphQLNonNull) for a in f.args.values())]
            fields = leaves
        if not fields:
            return "{ __typename }"
        picked = self.rng.sample(fields, k=min(len(fields), self.rng.randint(1, 4)))
        inner = " ".join(self._field(n, f, depth + 1) for n, f in picked)
        return f"{{ {inner} }}"

    # -- values -------------------------------------------------------------------------------
    def value(self, type_: GraphQLInputType) -> Any:
        if self.rng.random() < self.wrong_rate:
            return self.rng.choice(WRONG)
        if isinstance(type_, GraphQLNonNull):
            return self.value(type_.of_type)
        if isinstance(type_, GraphQLList):
            return [self.value(type_.of_type) for _ in range(self.rng.randint(0, 3))]
        return self._named(type_)

    def _named(self, type_: GraphQLNamedType) -> Any:
        if isinstance(type_, GraphQLEnumType):
            names = sorted(type_.values)
            return self.rng.choice(names) if self.rng.random() > 0.05 else "NOT_A_VALUE"
        if isinstance(type_, GraphQLInputObjectType):
            out: dict[str, Any] = {}
            for name, f in sorted(type_.fields.items()):
                required = isinstance(f.type, GraphQLNonNull)
                if (required and self.rng.random() > 0.03) or self.rng.random() < 0.4:
                    out[name] = self.value(f.type)
            if self.rng.random() < 0.03:
                out["unknownField"] = 1
            return out
        assert isinstance(type_, GraphQLScalarType)
        return self._scalar(type_.name)

    def _scalar(self, name: str) -> Any:
        rng = self.rng
        if name == "Int":
            return rng.choice(HUGE_INTS + [rng.randint(0, 60)] * 4)
        if name == "Float":
            return rng.choice(FLOATS)
        if name == "Boolean":
            return rng.random() < 0.5
        if name == "ID":
            return rng.choice(self.ids)
        if name == "JSON":
            return rng.choice([{"a": [1, None]}, [], "s", 1, None, {"deep": {"er": [{}]}}])
        return rng.choice([*STRINGS, f"fuzz-{rng.randint(0, 99)}"])

    def literal(self, value: Any, type_: GraphQLInputType | None = None) -> str:
        """``value`` as a GraphQL literal; enum names bare where the schema expects an enum."""
        named = get_named_type(type_) if type_ is not None else None
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return repr(value) if isinstance(value, int) or value == value else "0"
        if isinstance(value, str):
            if isinstance(named, GraphQLEnumType) and value.isidentifier():
                return value
            return json.dumps(value)
        if isinstance(value, list):
            inner = type_.of_type if isinstance(type_, GraphQLList) else None
            if isinstance(type_, GraphQLNonNull) and isinstance(type_.of_type, GraphQLList):
                inner = type_.of_type.of_type
            return "[" + ", ".join(self.literal(v, inner) for v in value) + "]"
        fields = named.fields if isinstance(named, GraphQLInputObjectType) else {}
        pairs = [f"{k}: {self.literal(v, fields[k].type if k in fields else None)}"
                 for k, v in value.items()]
        return "{" + ", ".join(pairs) + "}"
