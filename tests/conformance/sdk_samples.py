"""Microsoft's azure-servicebus samples as a conformance suite for the local stand-in.

The samples are not committed: the source distribution of the pinned SDK version is downloaded
at test time with pip (as configured on the machine) into ``.cache/`` (git-ignored), and its
``samples/sync_samples`` and ``samples/async_samples`` are run one by one, each as a subprocess
against a private stand-in whose topology has the entities the samples name.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE = REPO_ROOT / ".cache" / "sdk-samples"
RUNNER = Path(__file__).with_name("run_sample.py")
PACKAGE = "azure-servicebus"
SAMPLE_TIMEOUT = 240.0

QUEUE = "sample-queue"
SESSION_QUEUE = "sample-session-queue"
TOPIC = "sample-topic"
SUBSCRIPTION = "sample-subscription"
SESSION_TOPIC = "sample-session-topic"
SESSION_SUBSCRIPTION = "sample-session-subscription"
SESSION_ID = "sample-session"

# Samples that need what only Azure has, by file name without the "_async" suffix. Their
# Service Bus behaviour is covered elsewhere where it matters (see the reasons).
AZURE_ONLY: dict[str, str] = {
    "mgmt_queue": "ServiceBusAdministrationClient: the ATOM management API over HTTPS",
    "mgmt_topic": "ServiceBusAdministrationClient: the ATOM management API over HTTPS",
    "mgmt_subscription": "ServiceBusAdministrationClient: the ATOM management API over HTTPS",
    "mgmt_rule": "ServiceBusAdministrationClient: the ATOM management API over HTTPS",
    "topic_subscription_with_rule_operations": (
        "creates its subscriptions and rules with ServiceBusAdministrationClient (ATOM over "
        "HTTPS); the same rules, messages and expected counts run through topology-defined "
        "rules in tests/integration/test_servicebus_standin_rules.py"
    ),
    "client_identity_authentication": (
        "authenticates a service principal with EnvironmentCredential against Entra ID (AAD); "
        "the sample shows nothing else"
    ),
    "proxy": (
        "AMQP over WebSockets (TLS on port 443) through an authenticating HTTP proxy at "
        "127.0.0.1:8899"
    ),
    "connection_to_custom_endpoint_address": (
        "TLS to a custom endpoint with a custom CA bundle; its endpoint and CA path are "
        "placeholders that must be edited"
    ),
}


# Samples the stand-in does not pass yet, with the reason, by file name without "_async"; they
# run as strict xfail so a fix shows up. None today.
STANDIN_GAPS: dict[str, str] = {}

# Samples that fail against Azure Service Bus as well, because of a bug in the pinned client, by
# file stem (sync and async differ). They run as non-strict xfail (the failure depends on how the
# client's tasks interleave), so the suite neither hides them nor makes a pass of a client bug.
FAILS_ON_AZURE_TOO: dict[str, str] = {
    "session_pool_receive_async": (
        "sends 20 messages with asyncio.gather on one ServiceBusSender; the 7.15 client gives "
        "the concurrent transfers the same delivery-id and delivery-tag (it sends one pending "
        "delivery from several tasks), the connection ends and the sender fails with "
        "\"'NoneType' object has no attribute 'create_sender_link'\", which is what Azure "
        "itself produces for that code: https://github.com/Azure/azure-sdk-for-python/issues/36334 "
        "(a sender is not safe for concurrent use; workaround: an asyncio.Lock around sends)"
    ),
}

# Samples whose own sleeps outlast SAMPLE_TIMEOUT, by file stem: their time limit. Unchanged, they
# hold their messages' or session's locks for minutes while AutoLockRenewer renews them.
LONG_RUNNING: dict[str, float] = {
    "auto_lock_renew": 420.0,  # sleeps 100 + 100 + 80 s
    "auto_lock_renew_async": 660.0,  # sleeps 4 x 100 + 80 s
}


def sample_timeout(sample: Path) -> float:
    return LONG_RUNNING.get(sample.stem, SAMPLE_TIMEOUT)


# Samples that consume forever (an iterator without max_wait_time), as a real consumer does:
# they are stopped after this many seconds and judged by what they printed until then.
RUNS_UNTIL_STOPPED: dict[str, float] = {
    "receive_iterator_queue": 15.0,
    "failure_and_recovery": 15.0,
}


def sample_topology() -> dict[str, Any]:
    """The entities the samples name, with a lock long enough for their sleeps."""

    def receiver(**extra: Any) -> dict[str, Any]:
        return {"LockDuration": "PT30S", "MaxDeliveryCount": 10, **extra}

    return {
        "UserConfig": {
            "Namespaces": [
                {
                    "Name": "sbemulatorns",
                    "Queues": [
                        {"Name": QUEUE, "Properties": receiver()},
                        {"Name": SESSION_QUEUE, "Properties": receiver(RequiresSession=True)},
                    ],
                    "Topics": [
                        {
                            "Name": TOPIC,
                            "Subscriptions": [
                                {"Name": SUBSCRIPTION, "Properties": receiver(LockDuration="PT1M")}
                            ],
                        },
                        {
                            "Name": SESSION_TOPIC,
                            "Subscriptions": [
                                {
                                    "Name": SESSION_SUBSCRIPTION,
                                    "Properties": receiver(
                                        LockDuration="PT1M", RequiresSession=True
                                    ),
                                }
                            ],
                        },
                    ],
                }
            ]
        }
    }


def sample_environment(connection_string: str, host: str, port: int, name: str) -> dict[str, str]:
    """The variables the samples read, pointing at the stand-in."""
    uses_session_topic = name.startswith("list_sessions")
    topic, subscription = (
        (SESSION_TOPIC, SESSION_SUBSCRIPTION) if uses_session_topic else (TOPIC, SUBSCRIPTION)
    )
    return {
        "SERVICEBUS_CONNECTION_STR": connection_string,
        "SERVICEBUS_FULLY_QUALIFIED_NAMESPACE": f"{host}:{port}",
        "SERVICEBUS_QUEUE_NAME": QUEUE,
        "SERVICEBUS_SESSION_QUEUE_NAME": SESSION_QUEUE,
        "SERVICEBUS_SESSION_ID": SESSION_ID,
        "SERVICEBUS_TOPIC_NAME": topic,
        "SERVICEBUS_SUBSCRIPTION_NAME": subscription,
        "SERVICEBUS_SAS_POLICY": "RootManageSharedAccessKey",
        "SERVICEBUS_SAS_KEY": "SAS_KEY_VALUE",
    }


# -- the source distribution --------------------------------------------------------------


def pinned_version() -> str:
    """The version requirements.txt pins (and the one installed, which must agree)."""
    for line in (REPO_ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        match = re.match(rf"^{PACKAGE}==([^\s;#]+)", line.strip())
        if match:
            installed = metadata.version(PACKAGE)
            if installed != match.group(1):
                raise RuntimeError(f"{PACKAGE} {installed} installed, {match.group(1)} pinned")
            return match.group(1)
    raise RuntimeError(f"{PACKAGE} is not pinned in requirements.txt")


def samples_root(version: str) -> Path:
    """Download (once) and extract the sdist; return its ``samples`` folder."""
    target = CACHE / f"{PACKAGE}-{version}"
    samples = target / "samples"
    if (samples / "sync_samples").is_dir() and (samples / "async_samples").is_dir():
        return samples
    downloads = CACHE / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    archive = _find_sdist(downloads, version)
    if archive is None:
        subprocess.run(
            [
                sys.executable, "-m", "pip", "download", f"{PACKAGE}=={version}",
                "--no-binary", ":all:", "--no-deps", "--quiet", "-d", str(downloads),
            ],
            check=True,
            timeout=300,
        )  # fmt: skip
        archive = _find_sdist(downloads, version)
    if archive is None:
        raise RuntimeError(f"pip did not download the {PACKAGE} {version} source distribution")
    _extract_samples(archive, target)
    return samples


def _find_sdist(folder: Path, version: str) -> Path | None:
    for candidate in folder.glob(f"*{version}.tar.gz"):
        if candidate.name.lower().replace("_", "-").startswith(PACKAGE):
            return candidate
    return None


def _extract_samples(archive: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            # "<name>-<version>/samples/..." -> "samples/..."; nothing else is needed.
            _, _, inner = member.name.partition("/")
            if not inner.startswith("samples/") or not member.isfile():
                continue
            if ".." in Path(inner).parts:
                continue
            source = tar.extractfile(member)
            if source is None:
                continue
            destination = target / inner
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(source.read())


def sample_files(samples: Path) -> list[Path]:
    return sorted((samples / "sync_samples").glob("*.py")) + sorted(
        (samples / "async_samples").glob("*.py")
    )


def base_name(sample: Path) -> str:
    return sample.stem.removesuffix("_async")


def sample_id(sample: Path) -> str:
    return f"{sample.parent.name.removesuffix('_samples')}/{sample.stem}"


# -- running one sample -------------------------------------------------------------------


@dataclass
class SampleRun:
    sample: str
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False
    stopped: bool = False


def run_sample(
    sample: Path, env: dict[str, str], timeout: float = SAMPLE_TIMEOUT, *, stop_after: float = 0
) -> SampleRun:
    """Run the sample file unchanged as a subprocess (in its own folder).

    With ``stop_after`` the sample is a consumer that never ends by itself: it is stopped then,
    and ``stopped`` is set instead of ``timed_out``.
    """
    started = time.monotonic()
    if stop_after:
        timeout = stop_after
    env = {**env, "PYTHONUNBUFFERED": "1"}  # keep what it printed if it has to be stopped
    try:
        completed = subprocess.run(
            [sys.executable, str(RUNNER), str(sample)],
            cwd=sample.parent,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        return SampleRun(
            sample_id(sample),
            None,
            _text(exc.stdout),
            _text(exc.stderr),
            time.monotonic() - started,
            timed_out=not stop_after,
            stopped=bool(stop_after),
        )
    return SampleRun(
        sample_id(sample),
        completed.returncode,
        completed.stdout,
        completed.stderr,
        time.monotonic() - started,
    )


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


# What a sample must print besides exiting 0, by file name: several samples print their results
# and exit 0 even when they received nothing, so the exit code alone proves little. A pattern
# with a count must occur exactly that often.
_QUEUE_SESSION_LINES = [
    (rf"Queue session: {SESSION_ID}-queue$", 1),
    (rf"Subscription session: {SESSION_ID}-subscription$", 1),
    (rf"Recently updated queue session: {SESSION_ID}-queue$", 1),
]
# 21 messages sent to one session, a receive of at most 10, in order: the single one first.
_SESSION_SEND_RECEIVE = [
    (r"Session state: b'START'", 1),
    (r"Session state: b'END'", 1),
    (r"\ASend message is done\.\nSession state: b'START'\nSingle session message\n", 1),
    (r"^(Single session message|Session Message.*)$", 10),
]
# The lock-renewal samples: every settle succeeds while the renewer holds the locks, and the one
# meant to fail (renewal slower than the lock) reports exactly that.
_LOCK_RENEWAL_FAILURE = [
    (r"^Intentionally failed to renew lock on message due to None$", 1),
    (r"^Messages cannot be settled if they have timed out\. \(This is expected\)$", 1),
    (r"^Lock renew failure demonstration complete\.$", 1),
]
EXPECTED_OUTPUT: dict[str, list[tuple[str, int | None]]] = {
    "auto_lock_renew": [(r"^Complete messages\.$", 2), *_LOCK_RENEWAL_FAILURE],
    "auto_lock_renew_async": [
        (r"^Complete messages\.$", 2),
        (r"^Complete queue messages\.$", 1),
        (r"^Complete subscription messages\.$", 1),
        *_LOCK_RENEWAL_FAILURE,
    ],
    "session_pool_receive": [(r"Received total 200 messages across 10 sessions", 1)],
    "session_pool_receive_async": [
        (r"^Message: Sample message no\. \d+$", 100),
        (r"^Message: shutdown$", 5),
    ],
    "session_send_receive": _SESSION_SEND_RECEIVE,
    "session_send_receive_async": _SESSION_SEND_RECEIVE,
    "receive_iterator_queue": [(r"^seed \d$", 5), (r"^Receive is done", 0)],
    "receive_iterator_queue_async": [(r"^seed \d$", 5)],
    "failure_and_recovery": [(r"^Data \d$", 10)],
    "list_sessions": _QUEUE_SESSION_LINES,
    "list_sessions_async": _QUEUE_SESSION_LINES,
}


def missing_output(stem: str, stdout: str) -> list[str]:
    """The expectations of ``EXPECTED_OUTPUT`` the output does not meet, described."""
    problems = []
    for pattern, count in EXPECTED_OUTPUT.get(stem, []):
        found = len(re.findall(pattern, stdout, flags=re.MULTILINE))
        if (count is None and found == 0) or (count is not None and found != count):
            problems.append(f"{pattern!r} found {found} times, expected {count or 'some'}")
    return problems


Prepare = Callable[[str], None]
