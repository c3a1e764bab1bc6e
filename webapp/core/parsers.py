"""The API's JSON parser: DRF's, with a bound on nesting (core.limits.MAX_JSON_DEPTH), so a hostile body is
a 400 with a message rather than a RecursionError in the decoder or in whatever walks the data later."""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from webapp.core.limits import MAX_JSON_DEPTH


def json_depth(value) -> int:
    """Nesting depth of parsed JSON (a scalar is 0, [] or {} is 1), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            stack.extend((child, depth) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        too_deep = f"JSON nested deeper than {MAX_JSON_DEPTH} levels is refused; send a flatter body."
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(too_deep) from None
        if json_depth(data) > MAX_JSON_DEPTH:
            raise ParseError(too_deep)
        return data
