"""The `iaforall` command as a user types it, in real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.models.gguf_files import write_gguf
from tests.real_server import SMOL, RealServer, free_port


def iaforall(
    *args: str, home: Path, port: int | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IAFORALL_HOME": str(home), "IAFORALL_THREADS": "2", "COLUMNS": "200"}
    if port is not None:
        env["IAFORALL_PORT"] = str(port)
    return subprocess.run(
        [sys.executable, "-m", "iaforall", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_help_lists_the_commands(tmp_path: Path) -> None:
    out = iaforall("--help", home=tmp_path).stdout
    for command in ("serve", "run", "list", "ps", "pull"):
        assert command in out


def test_pull_a_local_file_then_list(tmp_path: Path) -> None:
    source = write_gguf(tmp_path / "Tiny.Q4_K_M.gguf")
    pulled = iaforall("pull", str(source), "--name", "tiny:test", home=tmp_path / "home")
    assert pulled.returncode == 0, pulled.stderr
    listed = iaforall("list", home=tmp_path / "home")
    assert listed.returncode == 0
    row = next(line for line in listed.stdout.splitlines() if "tiny:test" in line)
    assert "llama" in row and "Q4_K_M" in row and "2048" in row


def test_pull_refuses_what_is_not_gguf(tmp_path: Path) -> None:
    fake = tmp_path / "notes.gguf"
    fake.write_text("not a model")
    pulled = iaforall("pull", str(fake), "--name", "notes", home=tmp_path / "home")
    assert pulled.returncode == 1
    assert "GGUF" in pulled.stderr and "Traceback" not in pulled.stderr
    assert not list((tmp_path / "home").rglob("*.gguf"))


def test_unknown_model_is_a_clear_error(tmp_path: Path) -> None:
    pulled = iaforall("pull", "llama9:400b", home=tmp_path)
    assert pulled.returncode == 1
    assert "smollm2:135m" in pulled.stderr  # it names what can be pulled


def test_run_without_a_server_starts_the_engine_itself(model_home: Path) -> None:
    done = iaforall(
        "run", SMOL, "Say hello.", "--max-tokens", "8", home=model_home, port=free_port()
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()


def test_run_and_ps_use_the_running_server(server: RealServer, model_home: Path) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    done = iaforall("run", SMOL, "Say hello.", "--max-tokens", "8", home=model_home, port=port)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    ps = iaforall("ps", home=model_home, port=port)
    assert ps.returncode == 0 and SMOL in ps.stdout and "ready" in ps.stdout


def test_interactive_run_keeps_the_conversation(server: RealServer, model_home: Path) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    done = iaforall(
        "run", SMOL, "--max-tokens", "6", home=model_home, port=port, stdin="Hi\nAnd again\n/bye\n"
    )
    assert done.returncode == 0, done.stderr
    assert len([line for line in done.stdout.split(">>> ") if line.strip()]) >= 2


def test_ps_without_a_server(tmp_path: Path) -> None:
    ps = iaforall("ps", home=tmp_path, port=free_port())
    assert ps.returncode == 1 and "iaforall serve" in ps.stderr
