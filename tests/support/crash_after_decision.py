"""A process that dies right after writing an approval decision (issue 19's crash window).

``python -m tests.support.crash_after_decision approve|reject|expire ORDER_ID [WRITES]`` builds
the product's services from the environment (the same settings as the stack's function app) and
takes the decision with ``shared.services.orders.approvals``: approves or rejects the held
order, or (``expire``) runs the sweeper's expiry of every held order whose approval has run out
(the order must be one of them). It SIGKILLs itself the moment the order's ETag-conditional
write number WRITES (1, the decision, unless given) has returned: after the decision the booking
message is not sent, the holds are not given back, no status is published; after the second
write of a rejection or expiry (its holds marked given back) nothing that follows it runs.
What the next sweep or call does about it is the test (``tests/e2e/test_order_approval_crash.py``,
``tests/e2e/test_order_approval_expiry.py``), which starts the process with
`decide_in_a_dying_process`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devtools.stack import LocalStack
from shared import bootstrap
from shared.services.orders import approvals

VERBS = ("approve", "reject", "expire")
ROOT = Path(__file__).resolve().parents[2]


def decide_in_a_dying_process(
    stack: LocalStack,
    azurite_connection: str,
    policy: Mapping[str, Any],
    env: Mapping[str, str],
    verb: str,
    order_id: str,
    writes: int = 1,
) -> None:
    """Run the decision in a process of its own with the function app's settings (the stack's,
    the sync policy and the extra runner settings ``env``, with its ``TABLE_PREFIX``); it must
    die by SIGKILL right after the order's ``writes``-th write (1: the decision's)."""
    assert verb in VERBS, verb
    settings = {
        **os.environ,
        **stack.settings(),
        "AzureWebJobsStorage": azurite_connection,
        "SYNC_POLICY": json.dumps(policy),
        **env,
    }
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.crash_after_decision", verb, order_id, str(writes)],
        cwd=ROOT,
        env=settings,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]


async def _decide_and_die(verb: str, order_id: str, writes: int) -> None:
    ctx = bootstrap.order_context(bootstrap.get_services())
    write = approvals.change_order
    written: list[object] = []

    async def write_then_die(tables: Any, changed: str, *args: Any, **kwargs: Any) -> Any:
        stored = await write(tables, changed, *args, **kwargs)
        if changed == order_id:  # the expiry sweep may write other due orders first
            written.append(stored)
            if len(written) == writes:
                os.kill(os.getpid(), signal.SIGKILL)  # a crash: nothing after the write runs
        return stored

    approvals.change_order = write_then_die  # type: ignore[assignment]
    if verb == "expire":
        await approvals.expire_due(ctx)
        raise SystemExit(
            f"{order_id}: {len(written)} of {writes} writes; is its approval not over?"
        )
    decide = approvals.approve_order if verb == "approve" else approvals.reject_order
    await decide(ctx, order_id, "Kim Crash", f"{verb}, then the process dies", None)
    raise SystemExit(f"{order_id}: {len(written)} of {writes} writes")


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4) or sys.argv[1] not in VERBS:
        raise SystemExit(f"usage: python -m {__spec__.name} {'|'.join(VERBS)} ORDER_ID [WRITES]")
    writes = int(sys.argv[3]) if len(sys.argv) == 4 else 1
    asyncio.run(_decide_and_die(sys.argv[1], sys.argv[2], writes))
