"""Service Bus SQL filter expressions and rule actions: parse once, evaluate per message.

The grammar is the one Microsoft documents for subscription rules ("Subscription Rule SQL Filter
Syntax" and "SQL Rule Action Syntax"): comparisons, LIKE with ESCAPE, IN, IS NULL, EXISTS,
AND/OR/NOT with three-valued logic, arithmetic, ``sys.`` and ``user.`` scoped properties (bare
names are user properties), ``newid()`` / ``property()``, and SET / REMOVE actions.
"""

from .actions import SqlAction, compile_action
from .errors import SqlError, SqlEvaluationError, SqlSyntaxError, SqlUnsupported
from .evaluate import SqlFilter, compile_filter
from .message_view import MessageView

__all__ = [
    "MessageView",
    "SqlAction",
    "SqlError",
    "SqlEvaluationError",
    "SqlFilter",
    "SqlSyntaxError",
    "SqlUnsupported",
    "compile_action",
    "compile_filter",
]
