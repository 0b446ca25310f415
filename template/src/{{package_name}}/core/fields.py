"""Rules for the values clients send that every feature shares.

Each rule keeps a value the database could not store out of the service: refused in the
request model, it becomes a 422 naming the field, on every database, and it shows in the
OpenAPI document as a `pattern` or a `maximum`.
"""

#: One line of text: no control character at all (PostgreSQL cannot even store NUL).
LINE_PATTERN = r"^[^\x00-\x1f\x7f]*$"
#: Free text: tabs and line breaks, but no other control character.
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
#: The largest value of an INTEGER column: no id, price or offset can be larger.
INT_MAX = 2**31 - 1
