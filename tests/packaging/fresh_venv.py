"""The newcomer's path, step by step: build the sdist and the wheel from this checkout, install
the wheel alone in a fresh venv, pull the small bundle with that venv's `iaforall`, serve.

Everything happens in one temporary folder (the build outputs, the venv, the models, pip's and
other caches, the server's working directory), outside the repository and removed at the end;
the venv's processes get no PYTHONPATH and none of the caller's IAFORALL_ settings, so nothing
of this checkout can stand in for a file the wheel forgot."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.real_server import MONITOR_TOKEN, SMOL, RealServer, free_port, stop_server

REPO = Path(__file__).parents[2]

# The small test bundle: the test chat model, English speech to text, the English voice, and
# the French voice: the pip eSpeak NG (espeakng-loader, a dependency of the wheel itself), the
# server told IAFORALL_ESPEAK=pip so that a system `espeak-ng` cannot stand in for it.
BUNDLE = (SMOL, "whisper:tiny.en", "voice:joe", "voice:espeak")

# Variables of the caller's shell that would let the venv see this checkout, or another venv.
_LEAKS = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "VIRTUAL_ENV")


def run(argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float) -> str:
    """The command's output; on failure, an assertion that shows the command and its tail."""
    try:
        done = subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"timed out after {timeout} s: {shlex.join(argv)}") from e
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-30:])
        raise AssertionError(f"exit code {done.returncode}: {shlex.join(argv)}\n{tail}")
    return done.stdout


@dataclass(frozen=True)
class Built:
    sdist: Path
    wheel: Path

    def sdist_names(self) -> set[str]:
        """The sdist's files, without its top folder (`iaforall-0.1.0/`)."""
        with tarfile.open(self.sdist) as archive:
            return {
                member.name.partition("/")[2] for member in archive.getmembers() if member.isfile()
            }

    def wheel_names(self) -> set[str]:
        with zipfile.ZipFile(self.wheel) as archive:
            return set(archive.namelist())


def build(out: Path, env: dict[str, str]) -> Built:
    """`python -m build`: the sdist from the checkout, then the wheel from that sdist (not from
    the checkout), so a file the sdist forgot fails the wheel's build or its use."""
    run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(REPO)],
        cwd=out,
        env=env,
        timeout=300,
    )
    (sdist,) = out.glob("iaforall-*.tar.gz")
    (wheel,) = out.glob("iaforall-*.whl")
    return Built(sdist, wheel)


def tracked(*paths: str) -> set[str]:
    """This checkout's files under `paths`, as git knows them (no stray local files)."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "--", *paths],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(listed.split())


@dataclass(frozen=True)
class FreshVenv:
    root: Path  # the temporary folder: venv/, work/ (the working directory), home/, cache/

    @property
    def bin(self) -> Path:
        return self.root / "venv" / "bin"

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def home(self) -> Path:
        return self.root / "home"

    def env(self, **extra: str) -> dict[str, str]:
        inherited = {
            k: v for k, v in os.environ.items() if k not in _LEAKS and not k.startswith("IAFORALL_")
        }
        return {
            **inherited,
            "PATH": f"{self.bin}{os.pathsep}{inherited.get('PATH', '')}",
            "VIRTUAL_ENV": str(self.root / "venv"),
            "IAFORALL_HOME": str(self.home),
            "PIP_NO_CACHE_DIR": "1",  # cache nothing outside the temporary folder
            "XDG_CACHE_HOME": str(self.root / "cache"),
            **extra,
        }

    def run(self, *argv: str, timeout: float = 300) -> str:
        return run(list(argv), cwd=self.work, env=self.env(), timeout=timeout)

    def iaforall(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin / "iaforall"), *args],
            cwd=self.work,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def fresh_venv(root: Path, wheel: Path) -> FreshVenv:
    """A new venv with the wheel and its dependencies, and nothing else."""
    venv = FreshVenv(root)
    venv.work.mkdir()
    run(
        [sys.executable, "-m", "venv", str(root / "venv")],
        cwd=venv.work,
        env=venv.env(),
        timeout=120,
    )
    # --no-compile: byte-compiling ~8,000 files would double both the install and the clean-up;
    # the modules the server imports are compiled when imported, as anywhere.
    venv.run(
        str(venv.bin / "python"), "-m", "pip", "install", "--quiet", "--no-compile", str(wheel),
        timeout=600,
    )  # fmt: skip
    return venv


def pull_bundle(venv: FreshVenv, names: tuple[str, ...] = BUNDLE) -> str:
    """`iaforall pull NAME…`, as a newcomer types it: the runtime models are not in this venv,
    so pip downloads them into the store; what it said."""
    pulled = venv.iaforall("pull", *names)
    assert pulled.returncode == 0, (
        f"iaforall pull {' '.join(names)}:\n{pulled.stdout}{pulled.stderr}"
    )
    return pulled.stdout


def serve(venv: FreshVenv) -> RealServer:
    """`iaforall serve` from the venv on a free loopback port, once its default model is ready."""
    port = free_port()
    log = venv.root / "server.log"
    env = venv.env(
        IAFORALL_MODEL=SMOL,
        IAFORALL_THREADS="2",
        IAFORALL_CONTEXT_LENGTH="2048",
        IAFORALL_LOG_LEVEL="warning",
        IAFORALL_METRICS_TOKEN=MONITOR_TOKEN,
        IAFORALL_ESPEAK="pip",
    )
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(venv.bin / "iaforall"), "serve", "--port", str(port)],
            cwd=venv.work,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = RealServer(f"http://127.0.0.1:{port}", process, log)

    def ready() -> bool:
        assert process.poll() is None, f"the server exited:\n{log.read_text()[-3000:]}"
        try:
            model = server.model(SMOL)
        except httpx.HTTPError:
            return False
        return model is not None and model["state"] == "ready"

    try:
        server.wait_for(ready, 90, "the server and its default model")
    except BaseException:
        stop_server(server)  # not left running behind a failed start
        raise
    return server
