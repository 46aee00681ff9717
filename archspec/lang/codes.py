"""The diagnostic codes: each declared once, as a named constant that carries its one-line meaning.

A code is a `Code`, a `str` ("E305") with its one-line meaning as `.summary`, so a diagnostic made with a constant
compares, hashes, prints and serialises (JSON) exactly as the plain string did:

    Diagnostic(UNDEFINED_NODE, f"`{ref}` is not defined in {where}", loc)   # d.code == "E305"

`CODES` (code -> summary, in the order declared) is derived from the declarations below; `archspec explain` prints it,
and `archspec.lang.diagnostics` re-exports it. The long texts of some codes are in `archspec.lang.explanations`.

To add a code: declare it here, in its group, with a name that says what is wrong (UNKNOWN_*, MISSING_*, INVALID_*,
DUPLICATE_*, *_CYCLE, *_TOO_LARGE ...); a code never changes its number once published. A code that nothing
reports at present stays declared, marked `reserved=True`, so that `archspec explain` still answers for it; the
tests check that every other code is reported somewhere.
"""

from __future__ import annotations

import re
from typing import NoReturn


class Code(str):
    """A diagnostic code: the string itself (`"E305"`), with its one-line meaning (`summary`, the line `archspec
    explain` prints) and whether it is only reserved (catalogued, reported nowhere). Immutable, like the string."""

    summary: str
    reserved: bool

    def __new__(cls, number: str, summary: str, reserved: bool = False) -> "Code":
        self = super().__new__(cls, number)
        self.__dict__.update(summary=summary, reserved=reserved)
        return self

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"diagnostic code {str(self)} is read-only")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"diagnostic code {str(self)} is read-only")

    def __reduce__(self) -> tuple:
        return (Code, (str(self), self.summary, self.reserved))


def code(number: str, summary: str, *, reserved: bool = False) -> Code:
    """Declare the code `number` (`E` and three digits) with its one-line meaning."""
    if not re.fullmatch(r"E\d{3}", number):
        raise ValueError(f"a diagnostic code is `E` and three digits (`E305`), got {number!r}")
    if not summary or summary != summary.strip() or "\n" in summary:
        raise ValueError(f"{number} needs a one-line meaning without surrounding spaces, got {summary!r}")
    return Code(number, summary, reserved)


# E0xx: reading the file
UNREADABLE_FILE = code("E001", "the file cannot be read (missing, a folder, or not permitted)")
FILE_TOO_LARGE = code("E002", "the file is larger than the size budget for a spec")
NOT_UTF8_TEXT = code("E003", "the file is not UTF-8 text (binary data or another encoding)")
EMPTY_FILE = code("E004", "the file is empty")
YAML_SYNTAX = code("E005", "YAML syntax error")
TAB_INDENTATION = code("E006", "a tab is used for indentation (YAML needs spaces)")
DUPLICATE_KEY = code("E007", "a key appears twice in the same mapping")
REFUSED_YAML_TAG = code("E008", "a YAML tag that archspec does not accept (specs are plain data)")
ALIAS_EXPANSION_TOO_LARGE = code("E009", "YAML aliases expand beyond the size budget, or refer to themselves")
YAML_TOO_DEEP = code("E010", "the YAML is nested deeper than the budget")
INVALID_MAPPING_KEY = code("E011", "a mapping key that is not a plain name or number")
NUMBER_TOO_LARGE = code("E012", "a number too large to read")

# E1xx: structure (the JSON Schema)
WRONG_TYPE = code("E100", "a value has the wrong type")
UNKNOWN_KEY = code("E101", "an unknown key")
MISSING_KEY = code("E102", "a required key is missing")
INVALID_CHOICE = code("E103", "a value that is not one of the allowed choices")
INVALID_VALUE = code("E104", "a value outside its allowed range or form")
UNSUPPORTED_FORMAT_VERSION = code("E105", "an unsupported `archspec:` format version")

# E12x: files that refer to other files
REFERENCED_FILE_NOT_FOUND = code("E120", "an `extends` or `imports` file cannot be found")
REFERENCED_FILE_CYCLE = code("E121", "`extends` or `imports` files form a cycle")
REFERENCED_FILE_OUTSIDE_TREE = code("E122", "an `extends` or `imports` path leaves the spec's folder tree")
UNKNOWN_SPEC = code("E123", "no spec with this name or path")
LIBRARY_DEFINES_NETWORK = code("E124", "a library file (for `imports`) defines a network")
NO_NETWORK = code("E125", "the spec has no network")
BLOCK_IN_TWO_LIBRARIES = code("E126", "the same block template is defined by two imported libraries")

# E2xx: parameters and expressions
EXPR_SYNTAX = code("E200", "an expression cannot be parsed")
UNDEFINED_NAME = code("E201", "an expression uses a name that is not defined")
DIVISION_BY_ZERO = code("E202", "division by zero")
ARITHMETIC_OVERFLOW = code("E203", "arithmetic overflow: a result beyond the allowed range")
EXPR_TYPE_MISMATCH = code("E204", "an expression combines values of the wrong types")
PARAM_CYCLE = code("E205", "parameters that depend on each other in a cycle")
CONSTRAINT_NOT_MET = code("E206", "a constraint of the spec is not met")
UNKNOWN_PARAM = code(
    "E207", "a param is set that the spec does not have (in a file that extends another, or with `--set`), or `--set` "
    "is malformed")
INVALID_SIZE = code("E208", "a size that is not a positive whole number")
EXPR_TOO_LARGE = code("E209", "an expression is longer or more deeply nested than the budget")
UNHASHABLE_KEY = code("E210", "a list or mapping used as the key of a mapping (`[1] in m`, `m[[1]]`)")
NON_FINITE_NUMBER = code(
    "E211", "a number that is not finite (infinity, not-a-number, or a literal beyond the float range)")
NESTED_VALUE_TOO_LARGE = code(
    "E212", "a value too large, counted through its nested lists, to compare, search, walk or return")
INVALID_PARAM_VALUE = code(
    "E213", "a param value of the wrong type or outside its declared range (checked where the value is given)")
UNREAD_PARAM = code("E214", "a param is set (or declared by a file the user wrote) but nothing in the network reads it")
DUPLICATE_PARAM = code("E215", "a param is declared twice")
NETWORK_MERGE_CONFLICT = code(
    "E216", "a `network:` list over the network of the spec being extended (it would replace it whole), network "
    "edits with no network to edit, or a `replace:` that keeps the replaced network's description")
PARAM_WITHOUT_VALUE = code("E217", "a param declared without a default that nothing sets")

# E3xx: templates, nodes and the graph
UNKNOWN_OP = code("E300", "an unknown op")
UNKNOWN_BLOCK = code(
    "E301", "an unknown block template (`use:`), or an edit of a block that no file merged before defines")
MISSING_BLOCK_ARG = code("E302", "a required block parameter is missing")
UNKNOWN_BLOCK_ARG = code("E303", "an argument the block template does not declare")
INVALID_BLOCK_ARG = code("E304", "a block argument of the wrong type or out of range")
UNDEFINED_NODE = code("E305", "a reference to a node that does not exist")
DUPLICATE_NODE = code("E306", "two nodes with the same name")
GRAPH_CYCLE = code("E307", "the graph has a cycle")
UNUSED_NODE = code("E308", "a node whose output is never used")
WRONG_INPUT_COUNT = code("E309", "an op given the wrong number of inputs")
NO_CASE_APPLIES = code("E310", "no `cases` alternative applies")
RECURSIVE_BLOCK = code("E311", "a block template that contains itself")
IN_CHANNELS_BEFORE_INPUT = code("E312", "`in_channels` is read before its input is defined")
MISSING_OP_ATTR = code("E313", "an op is missing a required attribute")
INVALID_OP_ATTR = code("E314", "an op attribute with an invalid value")
UNNAMED_ITEM = code("E315", "an item without a name (only `repeat` items may be anonymous)")
INVALID_NODE_NAME = code(
    "E316", "a node name that is reserved, a Python keyword, an attribute of torch's modules, or not an identifier")
UNUSED_BLOCK_CHANGE = code("E317", "the spec's own file edits or changes a block that the network never uses")

# E4xx: shapes (the compiler)
MERGE_SHAPE_MISMATCH = code("E400", "inputs of a merge (add, concat) disagree in shape")
WRONG_TENSOR_SHAPE = code("E401", "an op receives a tensor of the wrong rank or size")
EMPTY_OUTPUT = code("E402", "a layer's output would be empty (spatial size below 1)")
INVALID_INPUT_SHAPE = code("E403", "the network input shape is invalid")

# E5xx: budgets
TOO_MANY_NODES = code("E500", "the spec would expand beyond the node budget")
TOO_MUCH_EXPR_WORK = code(
    "E501", "the expressions of the network take more work than the budget (an expression computed again in every "
    "copy of a `repeat` or use of a block)")

# E6xx: warnings (the spec compiles)
NETWORK_TOO_LARGE = code(
    "E600", "the network is larger than any machine could hold (parameters or one sample's activations)")

# E7xx: experiment files (`archspec sweep`; docs/experiments.md)
UNKNOWN_EXPERIMENT = code("E700", "no experiment file with this name or path (`archspec sweep --list`)")
EXPERIMENT_WITHOUT_RUNS = code(
    "E701", "an experiment that names no run: no `grid` nor `points`, or an axis without values")
DUPLICATE_POINT = code("E702", "two points of an experiment are the same run (spec, --set and recipe values alike)")
INVALID_TRAIN_FLAG = code(
    "E703", "an experiment's `train:` entry that `archspec train` does not take, that the sweep sets itself, or whose "
    "value it refuses")
INVALID_RECIPE_OVERRIDE = code(
    "E704", "an experiment's recipe value that the spec's recipe refuses, or that a train flag would override")
TOO_MANY_RUNS = code("E705", "an experiment with more runs than the budget")

# E9xx: the command line
INVALID_OPTION = code("E900", "a command-line option has an invalid value", reserved=True)
# (command-line problems are reported as usage errors, exit 2, without a code; E900 is kept for `archspec explain`)


# The catalogue: every code declared above, in the order written, with its one-line meaning.
CODES: dict[str, str] = {c: c.summary for c in list(globals().values()) if isinstance(c, Code)}
