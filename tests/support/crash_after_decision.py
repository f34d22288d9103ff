"""A process that dies right after writing an approval decision (issue 19's crash window).

``python -m tests.support.crash_after_decision approve|reject ORDER_ID`` builds the product's
services from the environment (the same settings as the stack's function app), approves or
rejects the held order with ``shared.services.orders.approvals``, and SIGKILLs itself the
moment the decision's ETag-conditional write has returned: the booking message is not sent,
the holds are not given back, no status is published. What the next sweep or call does
about it is the test (``tests/e2e/test_order_approval_crash.py``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

from shared import bootstrap
from shared.services.orders import approvals


async def _decide_and_die(verb: str, order_id: str) -> None:
    ctx = bootstrap.order_context(bootstrap.get_services())
    write = approvals.change_order

    async def write_then_die(*args: Any, **kwargs: Any) -> Any:
        stored = await write(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)  # a crash: nothing after the write runs
        return stored

    approvals.change_order = write_then_die  # type: ignore[assignment]
    decide = approvals.approve_order if verb == "approve" else approvals.reject_order
    await decide(ctx, order_id, "Kim Crash", f"{verb}, then the process dies", None)
    raise SystemExit("the decision was never written")


if __name__ == "__main__":
    asyncio.run(_decide_and_die(sys.argv[1], sys.argv[2]))
