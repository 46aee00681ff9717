"""The help line of an E200 after syntax the expression language does not have: what was written, what there is.

Python syntax that a user may reasonably try (lambdas, method calls, comprehensions, `is`, mappings written
inline, f-strings) is not part of the language; the parser reports it as E200 and asks `hint` here for a help line
that names the construct and lists what is supported.
"""

from __future__ import annotations

FUNCTION_NAMES = ("min", "max", "abs", "int", "float", "round", "floor", "ceil", "log", "log2", "make_divisible",
                  "len", "str", "sum")

SUPPORTED = ("expressions have numbers, strings, lists `[a, b]`, names, `+ - * / // % **`, comparisons, `in`, "
             "`and or not`, `x if c else y`, indexing `xs[i]`, slices `xs[a:b:c]`, fields `m.key` and the functions "
             + ", ".join(FUNCTION_NAMES))

# words of Python that are not part of the language, with what to write instead
_WORDS = {
    "for": "comprehensions (`[x for x in xs]`) are not supported; write the list, or use `[x] * n`",
    "is": "`is` is not supported; compare with `==` or `!=`",
    "lambda": "lambda is not supported; compute the value in a param",
    "elif": "`elif` is not supported; chain conditionals: `a if c else b if d else e`",
    "as": "`as` is not supported",
    "import": "`import` is not supported",
    "def": "functions cannot be defined",
    "yield": "`yield` is not supported",
    "await": "`await` is not supported",
}
_PREFIXES = {"f", "r", "b", "u", "rb", "br", "fr", "rf"}


def _with_supported(first: str) -> str:
    return f"{first}; {SUPPORTED}"


def for_word(word: str) -> str | None:
    """Help when the parser meets a word of Python that the language does not have, else None."""
    return _with_supported(_WORDS[word]) if word in _WORDS else None


def for_character(src: str, i: int) -> str:
    """Help for a character that no token starts with, at `src[i]`."""
    c = src[i]
    before = src[:i]
    if c == ":":
        words = before.replace("(", " ").replace(")", " ").split()
        if "lambda" in words:
            return _with_supported(_WORDS["lambda"])
        if before.count("{") > before.count("}"):
            return _with_supported("mappings cannot be written inside an expression; define them in params")
        return _with_supported("`:` is not part of an expression")
    if c in "{}":
        return _with_supported("mappings cannot be written inside an expression; define them in params")
    return _with_supported(f"`{c}` is not an operator of the language")


def for_call(callee_kind: str) -> str:
    """Help for a call of something that is not a built-in function's name."""
    if callee_kind == "field":
        return _with_supported("methods (`'abc'.upper()`, `m.keys()`) cannot be called")
    return _with_supported("only a built-in function can be called, by its name")


def for_string_prefix(prefix: str) -> str | None:
    """Help when a name such as `f` is followed directly by a string: an f-string or another prefixed string."""
    if prefix.lower() not in _PREFIXES:
        return None
    return _with_supported(f"string prefixes ({prefix}'...') are not supported; interpolate with \"${{...}}\" in a "
                           "plain YAML value, or join with str(...) and `+`")
