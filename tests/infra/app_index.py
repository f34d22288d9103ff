"""The function app as the Functions host indexes it: names and binding JSON per function."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def indexed_functions() -> tuple[tuple[str, tuple[dict[str, Any], ...]], ...]:
    """(function name, bindings) for every function, in registration order."""
    import function_app

    app = function_app.app
    # get_functions() remembers names from an earlier indexing (the runner's, in this
    # process) and would report every function as a duplicate; start from a clean slate.
    app.functions_bindings = None
    return tuple(
        (f.get_function_name(), tuple(json.loads(f.get_function_json())["bindings"]))
        for f in app.get_functions()
    )


def all_bindings() -> list[tuple[str, dict[str, Any]]]:
    return [(name, binding) for name, bindings in indexed_functions() for binding in bindings]
