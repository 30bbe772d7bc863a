"""Values for the rules the OpenAPI document states but JSON Schema cannot check.

A phone number (`format: phone`) must be valid in its country's numbering plan, which no pattern
can say: generated at random, nearly every string the pattern allows is a number no country has.
Numbers for the `phone` format are drawn here from ranges the numbering plan data knows (US
202 555-01xx, set aside for fiction; UK mobile 07911 1xxxxx), written the ways the API accepts:
E.164, or with spaces, dashes, dots and parentheses.
"""

import schemathesis
from hypothesis import strategies as st


def _phone(country: str, prefix: str, digits: int) -> st.SearchStrategy[str]:
    return st.integers(min_value=0, max_value=10**digits - 1).map(
        lambda n: f"+{country}{prefix}{n:0{digits}d}"
    )


def _spaced(number: str) -> str:
    # "+12025550123" -> "+1 (202) 555-0123"; "+447911123456" -> "+44 7911 123.456"
    if number.startswith("+1"):
        return f"+1 ({number[2:5]}) {number[5:8]}-{number[8:]}"
    return f"+44 {number[3:7]} {number[7:10]}.{number[10:]}"


_E164 = st.one_of(_phone("1", "20255501", 2), _phone("44", "79111", 5))

schemathesis.openapi.format("phone", st.one_of(_E164, _E164.map(_spaced)))
