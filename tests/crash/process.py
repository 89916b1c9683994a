"""Worker processes for the crash tests: their database and environment, start one, wait until it
is ready, kill it with SIGKILL (or let the last one finish), and the ``neutralize`` command of the
interpreter running the tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neutralize.core.config import Settings
from neutralize.core.migrations import upgrade


def cli() -> list[str]:
    """The ``neutralize`` command of the interpreter running the tests."""
    script = Path(sys.executable).parent / "neutralize"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from neutralize.cli import app; app()"]


def start(
    worker: Path, state: Path, seed: int, env: dict[str, str], stderr: Path, *, replay_only: bool = False
) -> subprocess.Popen[bytes]:
    """Run ``worker state seed``; it prints ``ready`` once, and nothing else, on standard output. With
    ``replay_only`` it stops by itself once ready: it finishes what was in flight and starts nothing."""
    last = ["--replay-only"] if replay_only else []
    command = [sys.executable, str(worker), str(state), str(seed), *last]
    with stderr.open("ab") as err:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=err)


def wait_ready(process: subprocess.Popen[bytes], stderr: Path) -> None:
    assert process.stdout is not None
    line = process.stdout.readline()  # the worker prints nothing else
    assert line == b"ready\n", f"the worker did not start ({line!r}):\n{stderr.read_text()[-4000:]}"


def finish(process: subprocess.Popen[bytes], stderr: Path) -> None:
    """Wait for a worker started with ``replay_only`` to stop by itself, as it must."""
    status = process.wait(timeout=120)
    assert status == 0, f"the worker failed ({status}):\n{stderr.read_text()[-4000:]}"
    assert process.stdout is not None
    process.stdout.close()


def kill(process: subprocess.Popen[bytes], stderr: Path) -> None:
    """SIGKILL a worker that must still be running."""
    status = process.poll()
    assert status is None, f"the worker stopped by itself ({status}):\n{stderr.read_text()[-4000:]}"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.stdout is not None
    process.stdout.close()


@dataclass(frozen=True)
class Rig:
    """A crash test's SQLite database, the worker's state folder, and the environment of its processes."""

    settings: Settings
    state: Path
    env: dict[str, str]


def new_rig(tmp_path: Path, env: dict[str, str], **settings: Any) -> Rig:
    """A migrated database under ``tmp_path`` and the environment (``env`` added) that points every
    worker and CLI process at it."""
    database = tmp_path / "crash.db"
    state = tmp_path / "state"
    state.mkdir()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("NEUTRALIZE_")}
    environment |= {
        "NEUTRALIZE_ENVIRONMENT": "test",
        "NEUTRALIZE_DATABASE_URL": f"sqlite:///{database}",
        **env,
    }
    configured = Settings(environment="test", database_url=f"sqlite:///{database}", **settings)
    upgrade(configured)
    return Rig(settings=configured, state=state, env=environment)
