"""Microsoft's azure-servicebus samples (pinned version, sync and async) against the stand-in.

Each sample runs unchanged as its own process, against its own private stand-in, with the
environment variables it reads; it passes when it exits 0 without a traceback and prints what
it is meant to (where its output shows a result). Samples that need Azure-only features are
listed in ``sdk_samples.AZURE_ONLY`` with the reason, and reported as skipped with it.
Select with ``-m sdk_samples``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from azure.servicebus import ServiceBusClient, ServiceBusMessage

from devtools.servicebus.testing import running_standin

from . import sdk_samples as sdk

pytestmark = [pytest.mark.sdk_samples, pytest.mark.timeout(sdk.SAMPLE_TIMEOUT + 120)]
# A test waits for its own sample, which may have started long before; allow for that.
_WAIT_MARGIN = 120

# The samples mostly wait on the network (receive timeouts, sleeps), so several run at once.
PARALLEL_SAMPLES = 6


def _samples() -> list[Path]:
    return sdk.sample_files(sdk.samples_root(sdk.pinned_version()))


def _seed_sessions(connection_string: str) -> None:
    """Give list_sessions something to list: a queue session with state, a subscription one."""
    queue_session = f"{sdk.SESSION_ID}-queue"
    with ServiceBusClient.from_connection_string(connection_string, retry_total=0) as client:
        with client.get_queue_sender(sdk.SESSION_QUEUE) as sender:
            sender.send_messages(ServiceBusMessage("seed", session_id=queue_session))
        with client.get_queue_receiver(sdk.SESSION_QUEUE, session_id=queue_session) as receiver:
            receiver.session.set_state("seeded")
        with client.get_topic_sender(sdk.SESSION_TOPIC) as sender:
            sender.send_messages(
                ServiceBusMessage("seed", session_id=f"{sdk.SESSION_ID}-subscription")
            )


def _seed_queue(connection_string: str) -> None:
    """Messages for the receive-forever iterator sample to print."""
    with (
        ServiceBusClient.from_connection_string(connection_string, retry_total=0) as client,
        client.get_queue_sender(sdk.QUEUE) as sender,
    ):
        sender.send_messages([ServiceBusMessage(f"seed {n}") for n in range(5)])


PREPARE: dict[str, sdk.Prepare] = {
    "list_sessions": _seed_sessions,
    "receive_iterator_queue": _seed_queue,
}


def _run_one(sample: Path) -> sdk.SampleRun:
    name = sdk.base_name(sample)
    with running_standin(sdk.sample_topology(), in_process=True, admin=False) as bus:
        prepare = PREPARE.get(name)
        if prepare is not None:
            prepare(bus.connection_string)
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        env.update(sdk.sample_environment(bus.connection_string, bus.host, bus.port, name))
        return sdk.run_sample(
            sample,
            env,
            sdk.sample_timeout(sample),
            stop_after=sdk.RUNS_UNTIL_STOPPED.get(name, 0),
        )


@pytest.fixture(scope="session")
def sample_runs(request: pytest.FixtureRequest) -> Iterator[dict[str, Future[sdk.SampleRun]]]:
    """Start every selected sample at once (bounded); each test waits for its own."""
    selected = [
        item.callspec.params["sample"]
        for item in request.session.items
        if hasattr(item, "callspec") and "sample" in item.callspec.params
    ]
    runnable = [s for s in selected if sdk.base_name(s) not in sdk.AZURE_ONLY]
    # The longest first, so that they overlap with the rest instead of running last.
    runnable.sort(key=sdk.sample_timeout, reverse=True)
    with ThreadPoolExecutor(max_workers=PARALLEL_SAMPLES, thread_name_prefix="sample") as pool:
        yield {sdk.sample_id(s): pool.submit(_run_one, s) for s in runnable}


def _params() -> list[Any]:
    params = []
    for sample in _samples():
        name = sdk.base_name(sample)
        gap = sdk.STANDIN_GAPS.get(name)
        client_bug = sdk.FAILS_ON_AZURE_TOO.get(sample.stem)
        marks: list[Any] = [pytest.mark.xfail(reason=gap, strict=True)] if gap else []
        if client_bug:
            marks = [pytest.mark.xfail(reason=client_bug, strict=False)]
        if sample.stem in sdk.LONG_RUNNING:
            marks.append(pytest.mark.timeout(sdk.sample_timeout(sample) + _WAIT_MARGIN))
        params.append(pytest.param(sample, id=sdk.sample_id(sample), marks=marks))
    return params


@pytest.mark.parametrize("sample", _params())
def test_sample_passes_against_the_standin(
    sample: Path, sample_runs: dict[str, Future[sdk.SampleRun]]
) -> None:
    name = sdk.base_name(sample)
    if name in sdk.AZURE_ONLY:
        pytest.skip(f"Azure-only: {sdk.AZURE_ONLY[name]}")
    run = sample_runs[sdk.sample_id(sample)].result()
    report = (
        f"{run.sample}: exit {run.returncode} after {run.seconds:.1f}s\n"
        f"--- stdout (tail) ---\n{run.stdout[-3000:]}\n--- stderr (tail) ---\n{run.stderr[-3000:]}"
    )
    assert not run.timed_out, "timed out (hung?)\n" + report
    assert run.stopped or run.returncode == 0, report
    assert "Traceback (most recent call last)" not in run.stderr, report
    problems = sdk.missing_output(sample.stem, run.stdout)
    assert not problems, "; ".join(problems) + "\n" + report


def test_the_azure_only_list_names_real_samples() -> None:
    """A renamed or removed sample must not keep an exemption alive."""
    names = {sdk.base_name(sample) for sample in _samples()}
    assert set(sdk.AZURE_ONLY) | set(sdk.STANDIN_GAPS) | set(sdk.RUNS_UNTIL_STOPPED) <= names
    assert not set(sdk.AZURE_ONLY) & set(sdk.STANDIN_GAPS)
    stems = {sample.stem for sample in _samples()}
    assert set(sdk.FAILS_ON_AZURE_TOO) | set(sdk.LONG_RUNNING) <= stems
    assert set(sdk.EXPECTED_OUTPUT) <= {sample.stem for sample in _samples()}
    assert len(names - set(sdk.AZURE_ONLY)) >= 20
