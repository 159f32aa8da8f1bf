"""Operator regexes that cannot stall the server.

Python's `re` has no timeout, so a pattern is accepted only if it is short, has no back
references and no repeated group whose content can itself match in several ways (`(a+)+`,
`(a|ab)*`: the exponential kind of backtracking). The quadratic kind that any pattern can show
on a long text (`\\w+@\\w+` on 100,000 letters) is bounded by searching in windows
(`search_windows`), so a match is at most `MAX_MATCH` characters long.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

MAX_PATTERN = 500
MAX_MATCH = 200  # the longest text one match may cover
WINDOW = 2_000  # characters searched at once: each search costs at most O(WINDOW²)
_BIG_REPEAT = 10  # a bounded repeat above this counts as unbounded

_BACKREF = re.compile(r"\\[1-9]|\(\?P=")


class UnsafePattern(ValueError):
    pass


def compile_safe(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """The compiled pattern, or UnsafePattern / re.error saying what is wrong with it."""
    if not pattern:
        raise UnsafePattern("the pattern is empty")
    if len(pattern) > MAX_PATTERN:
        raise UnsafePattern(f"the pattern is longer than {MAX_PATTERN} characters")
    compiled = re.compile(pattern, flags)
    if _BACKREF.search(_without_classes_and_escaped_backslashes(pattern)):
        raise UnsafePattern("back references (\\1, (?P=name)) are not allowed")
    _check_repeats(pattern)
    if compiled.search(""):
        raise UnsafePattern("the pattern matches an empty text, so it would match everything")
    return compiled


def _without_classes_and_escaped_backslashes(pattern: str) -> str:
    return re.sub(r"\[(?:\\.|[^\]\\])*\]", "", pattern.replace("\\\\", ""))


def _check_repeats(pattern: str) -> None:
    """Refuse a group repeated without a small bound whose content is ambiguous: it holds a
    variable repeat or an alternation."""
    # For each open group: does its content hold a variable repeat or an alternation?
    stack: list[bool] = []
    i, n = 0, len(pattern)
    last_group_ambiguous: bool | None = None  # set right after a group closes
    while i < n:
        ch = pattern[i]
        closed: bool | None = None
        if ch == "\\":
            i += 2
        elif ch == "[":
            i = _end_of_class(pattern, i)
        elif ch == "(":
            stack.append(False)
            i = _after_group_prefix(pattern, i + 1)
        elif ch == ")":
            closed = stack.pop() if stack else False
            i += 1
        elif ch == "|":
            if stack:
                stack[-1] = True
            i += 1
        else:
            quantifier, end = _quantifier_at(pattern, i)
            if quantifier is not None:
                variable, big = quantifier
                if big and last_group_ambiguous:
                    raise UnsafePattern(
                        f"the repeated group before '{pattern[i:end]}' can match the same text "
                        "in many ways (a repeat or | inside a repeat), which can take forever "
                        "on some texts; rewrite it without the nesting"
                    )
                if variable and stack:
                    stack[-1] = True
                i = end
            else:
                i += 1
            last_group_ambiguous = None
            continue
        if closed is not None:
            if stack and closed:
                stack[-1] = True
            last_group_ambiguous = closed
        else:
            last_group_ambiguous = None


def _after_group_prefix(pattern: str, i: int) -> int:
    """Skip what follows "(" in "(?:", "(?=", "(?<!", "(?P<name>", "(?i:"…"""
    if not pattern.startswith("?", i):
        return i
    i += 1
    if pattern.startswith("P<", i):
        return pattern.index(">", i) + 1
    if pattern.startswith(("<=", "<!"), i):
        return i + 2
    while i < len(pattern) and (pattern[i].isalpha() or pattern[i] == "-"):
        i += 1  # inline flags, as in (?i) or (?i-s:…)
    return i + 1 if i < len(pattern) and pattern[i] in ":=!>" else i


def _end_of_class(pattern: str, start: int) -> int:
    i = start + 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1
    while i < len(pattern) and pattern[i] != "]":
        i += 2 if pattern[i] == "\\" else 1
    return i + 1


_BRACES = re.compile(r"\{(\d*)(,?)(\d*)\}")


def _quantifier_at(pattern: str, i: int) -> tuple[tuple[bool, bool] | None, int]:
    """((variable, big), end) if a quantifier starts at i: variable when it may repeat a
    varying number of times, big when unbounded or above `_BIG_REPEAT`."""
    ch = pattern[i]
    if ch in "*+":
        end = i + 1
        big = True
    elif ch == "?":
        end, big = i + 1, False
    elif ch == "{" and (m := _BRACES.match(pattern, i)) and (m.group(1) or m.group(3)):
        low = int(m.group(1) or 0)
        high = None if m.group(2) and not m.group(3) else int(m.group(3) or low)
        end = m.end()
        big = high is None or high > _BIG_REPEAT
        variable = high is None or high != low
        return (variable, big), _lazy_or_possessive(pattern, end)
    else:
        return None, i + 1
    return (True, big), _lazy_or_possessive(pattern, end)


def _lazy_or_possessive(pattern: str, end: int) -> int:
    return end + 1 if end < len(pattern) and pattern[end] in "?+" else end


def search_windows(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    """The first match of `pattern` in `text`, searched window by window."""
    for match in _windowed(pattern, text):
        return match
    return None


def _windowed(pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    n = len(text)
    start = 0
    while True:
        end = min(n, start + WINDOW)
        for match in pattern.finditer(text, start, end):
            # A match touching the window's cut may be cut short (or find a false word
            # boundary); the next window, which overlaps by MAX_MATCH, sees it whole.
            if match.end() < end or end == n:
                yield match
                return
        if end == n:
            return
        start = end - MAX_MATCH
