"""The cases of bench/quality.py, and how each answer is judged: built here, offline.

Five categories of about a dozen cases, each with an answer that can be checked by code:
JSON mode (`response_format: json_object`, the object must hold what was asked), exact-answer
instructions, the language of the answer to a question asked in French, tool calls (the right
tool, with the right arguments) and simple facts and arithmetic.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Judge = Callable[[dict[str, Any]], bool]  # the message of the answer -> passed


@dataclass(frozen=True)
class Case:
    category: str
    prompt: str
    judge: Judge
    max_tokens: int
    extra: dict[str, Any] = field(default_factory=dict)  # more of the request's body


def _text(message: dict[str, Any]) -> str:
    return str(message.get("content") or "")


def _same(found: Any, expected: Any) -> bool:
    if isinstance(expected, str):
        return isinstance(found, str) and found.strip().casefold() == expected.casefold()
    if isinstance(expected, bool) or expected is None:
        return found is expected
    if isinstance(expected, int | float):
        return isinstance(found, int | float) and not isinstance(found, bool) and found == expected
    if isinstance(expected, list):
        return (
            isinstance(found, list)
            and len(found) == len(expected)
            and all(_same(f, e) for f, e in zip(found, expected, strict=True))
        )
    return bool(found == expected)


def json_object(message: dict[str, Any]) -> dict[str, Any] | None:
    try:
        value = json.loads(_text(message))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _holds(**expected: Any) -> Judge:
    def judge(message: dict[str, Any]) -> bool:
        found = json_object(message)
        return found is not None and all(
            key in found and _same(found[key], value) for key, value in expected.items()
        )

    return judge


JSON_MODE = {"response_format": {"type": "json_object"}}

_JSON = [
    ("Return a JSON object with key ok set to true.", _holds(ok=True)),
    ('Return a JSON object with key name set to "Alice".', _holds(name="Alice")),
    ("Return a JSON object with key count set to the number 3.", _holds(count=3)),
    ("Return a JSON object with key a set to 1 and key b set to 2.", _holds(a=1, b=2)),
    ('Return a JSON object with key city set to "Paris".', _holds(city="Paris")),
    ("Return a JSON object with key valid set to false.", _holds(valid=False)),
    (
        'Return a JSON object with key colors set to a list of the strings "red" and "green".',
        _holds(colors=["red", "green"]),
    ),
    ("Return a JSON object with key sum set to the sum of 2 and 3.", _holds(sum=5)),
    ('Return a JSON object with key language set to "French".', _holds(language="French")),
    (
        'Return a JSON object with key name set to "Bob" and key age set to 30.',
        _holds(name="Bob", age=30),
    ),
    ("Describe a cat as a JSON object with key legs set to 4.", _holds(legs=4)),
    ("Return a JSON object with key empty set to null.", _holds(empty=None)),
]


def _normalized(text: str) -> str:
    return text.strip().strip("\"'`*.!").strip().casefold()


def _exactly(expected: str) -> Judge:
    return lambda message: _normalized(_text(message)) == expected


_EXACT = [
    ("Answer with only the word yes.", "yes"),
    ("Reply with exactly the word OK and nothing else.", "ok"),
    ("What is 2 + 2? Reply with the digit only.", "4"),
    ("Repeat this word exactly and write nothing else: banana", "banana"),
    ("Is the Sun a star? Answer only true or false.", "true"),
    ("Write only the first letter of the English alphabet, in lowercase.", "a"),
    ("What color is the sky on a clear day? Answer with one lowercase word.", "blue"),
    ("Write the number ten using digits only.", "10"),
    ("Write the word cat in capital letters and nothing else.", "cat"),
    ("Is fire cold? Answer only yes or no.", "no"),
    ("What is the capital of Italy? Answer with the city name only.", "rome"),
    ("Output only the word done.", "done"),
]


def _mentions(*expected: str) -> Judge:
    def judge(message: dict[str, Any]) -> bool:
        text = _text(message).casefold()
        return any(re.search(rf"(?<![\w.]){re.escape(e)}(?![\w]|\.\d)", text) for e in expected)

    return judge


_FACTS = [
    ("What is the capital of France?", _mentions("paris")),
    ("How many days are there in a week?", _mentions("7", "seven")),
    ("What is 12 + 15?", _mentions("27")),
    ("What is 9 times 7?", _mentions("63")),
    ("What is 100 minus 37?", _mentions("63")),
    ("What is the chemical symbol for gold?", _mentions("au")),
    ("Which planet is known as the Red Planet?", _mentions("mars")),
    ("How many legs does a spider have?", _mentions("8", "eight")),
    ("What is 144 divided by 12?", _mentions("12", "twelve")),
    ("Who wrote Romeo and Juliet?", _mentions("shakespeare")),
    ("What is the largest ocean on Earth?", _mentions("pacific")),
    ("What is 15 squared?", _mentions("225")),
]

_FRENCH_COMMON = (
    "le la les l un une des du de d est sont et en au aux que qui pour dans par sur avec "
    "il elle ils on ce c cette ces pas ne plus se sa son ses leur très aussi mais ou où "
    "nous vous je tu être a été peut"
)
_ENGLISH_COMMON = (
    "the a an is are and of to in it its for with that this on by be was as at from or "
    "you your can which what not but also has have"
)
_FRENCH_WORDS = frozenset(_FRENCH_COMMON.split())
_ENGLISH_WORDS = frozenset(_ENGLISH_COMMON.split())


def french_or_english(text: str) -> tuple[int, int]:
    """How many common French and English words `text` has."""
    words = re.findall(r"[a-zàâçéèêëîïôûùüÿœ]+", text.casefold())
    return sum(w in _FRENCH_WORDS for w in words), sum(w in _ENGLISH_WORDS for w in words)


def _in_french(message: dict[str, Any]) -> bool:
    text = _text(message)
    french, english = french_or_english(text)
    short = len(text.split()) <= 3  # "Madrid." is no language: it passes unless English
    return french > english or (short and english == 0 and bool(text.strip()))


_FRENCH = [
    "Quelle est la capitale de l'Espagne ?",
    "Pourquoi le ciel est-il bleu ?",
    "Combien de jours y a-t-il dans une semaine ?",
    "Qu'est-ce qu'un ordinateur ?",
    "Donne-moi un conseil pour bien dormir.",
    "Quel est le plus grand océan du monde ?",
    "Écris une phrase sur la mer.",
    "Qui a peint la Joconde ?",
    "À quoi sert une boussole ?",
    "De quelle couleur est une banane mûre ?",
    "Explique en une phrase ce qu'est la pluie.",
    "Que mange un chat ?",
]


def _function(name: str, description: str, **properties: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {key: {"type": kind} for key, kind in properties.items()},
                "required": list(properties),
            },
        },
    }


TOOLS = [
    _function("get_weather", "Get the current weather in a city.", city="string"),
    _function("add_numbers", "Add two numbers.", a="number", b="number"),
    _function("set_timer", "Start a timer for a number of minutes.", minutes="integer"),
    _function("send_email", "Send an email.", to="string", subject="string"),
    _function(
        "translate", "Translate a text into a language.", text="string", target_language="string"
    ),
]


def _arg_matches(found: Any, expected: Any) -> bool:
    if isinstance(expected, str):
        return isinstance(found, str) and expected.casefold() in found.casefold()
    if isinstance(found, str):  # "10" for 10: the value is right, its JSON type is not
        return False
    return isinstance(found, int | float) and found == expected


def _calls(name: str, *, unordered: bool = False, **expected: Any) -> Judge:
    """The first tool call is `name`, with arguments that are valid JSON and hold `expected`
    (strings: contained, case aside); `unordered`: the values in any order (a + b)."""

    def judge(message: dict[str, Any]) -> bool:
        calls = message.get("tool_calls") or []
        if not calls or calls[0].get("function", {}).get("name") != name:
            return False
        try:
            args = json.loads(calls[0]["function"].get("arguments") or "")
        except ValueError:
            return False
        if not isinstance(args, dict):
            return False
        if unordered:
            found = sorted(v for v in args.values() if isinstance(v, int | float))
            return found == sorted(expected.values())
        return all(_arg_matches(args.get(key), value) for key, value in expected.items())

    return judge


_TOOL_CALLS = [
    ("What is the weather like in Paris?", _calls("get_weather", city="Paris")),
    ("Use the tool to add 17 and 25.", _calls("add_numbers", unordered=True, a=17, b=25)),
    ("Set a timer for 10 minutes.", _calls("set_timer", minutes=10)),
    (
        "Send an email to bob@example.com with the subject Lunch.",
        _calls("send_email", to="bob@example.com", subject="lunch"),
    ),
    (
        "Translate 'good morning' into Spanish.",
        _calls("translate", text="good morning", target_language="spanish"),
    ),
    ("Is it raining in Tokyo right now?", _calls("get_weather", city="Tokyo")),
    ("Add 3.5 and 4.5 with the tool.", _calls("add_numbers", unordered=True, a=3.5, b=4.5)),
    ("Start a timer of 25 minutes.", _calls("set_timer", minutes=25)),
    ("How hot is it in Cairo today?", _calls("get_weather", city="Cairo")),
    (
        "Email alice@example.org with the subject Meeting.",
        _calls("send_email", to="alice@example.org", subject="meeting"),
    ),
    ("Translate 'thank you' into German.", _calls("translate", target_language="german")),
    ("What is 120 plus 80? Use the add tool.", _calls("add_numbers", unordered=True, a=120, b=80)),
]

CATEGORIES = ("json", "exact", "french", "tools", "facts")


def all_cases() -> list[Case]:
    tools = {"tools": TOOLS, "tool_choice": "auto"}
    return [
        *(Case("json", p, j, 64, JSON_MODE) for p, j in _JSON),
        *(Case("exact", p, _exactly(e), 16) for p, e in _EXACT),
        *(Case("french", p, _in_french, 32) for p in _FRENCH),
        *(Case("tools", p, j, 64, tools) for p, j in _TOOL_CALLS),
        *(Case("facts", p, j, 32) for p, j in _FACTS),
    ]
