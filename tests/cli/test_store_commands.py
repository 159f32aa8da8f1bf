"""`iaforall rm`, `cp`, `link` and `show` as a user types them, in real processes, on GGUF
files the tests write (a folder of them indexed where it is, not copied)."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_cli import iaforall
from tests.models.gguf_files import write_gguf


def test_a_folder_is_linked_shown_copied_and_removed_without_touching_it(tmp_path: Path) -> None:
    home, folder = tmp_path / "home", tmp_path / "my-models"
    folder.mkdir()
    first = write_gguf(folder / "Tiny.Q4_K_M.gguf")
    second = write_gguf(folder / "Other.Q8_0.gguf")
    projector = write_gguf(folder / "mmproj-Other.Q8_0.gguf")
    (folder / "notes.txt").write_text("not a model")

    linked = iaforall("link", str(folder), home=home)
    assert linked.returncode == 0, linked.stderr
    assert "is linked from" in linked.stdout
    listed = iaforall("list", home=home).stdout
    assert "tiny" in listed.lower() and "other" in listed.lower()
    stored = home / "models"
    links = sorted(p for p in stored.glob("*.gguf"))
    assert links and all(p.is_symlink() for p in links)  # indexed where they are: no copy
    assert {p.resolve() for p in links} == {first, second, projector}

    name = next(line.split()[0] for line in listed.splitlines() if "other" in line.lower())
    shown = iaforall("show", name, home=home)
    assert shown.returncode == 0, shown.stderr
    assert str(second) in shown.stdout and "vision" in shown.stdout
    assert "yes" in next(line for line in shown.stdout.splitlines() if "vision" in line)
    parameters = iaforall("show", name, "--parameters", home=home)
    assert parameters.stdout.startswith("num_ctx")

    copied = iaforall("cp", name, "mine:v1", home=home)
    assert copied.returncode == 0, copied.stderr
    assert (stored / "mine-v1.gguf").exists() or "mine:v1" in iaforall("list", home=home).stdout

    removed = iaforall("rm", name, "mine:v1", home=home)
    assert removed.returncode == 0, removed.stderr
    assert name not in iaforall("list", home=home).stdout
    assert second.is_file() and projector.is_file()  # the user's own files stay


def test_bad_input_gets_clear_errors(tmp_path: Path) -> None:
    home, empty = tmp_path / "home", tmp_path / "empty"
    empty.mkdir()
    fake = tmp_path / "fake.gguf"
    fake.write_text("not a GGUF file at all")
    cases = [
        (("link", str(fake)), "GGUF"),
        (("link", str(tmp_path / "missing.gguf")), "no file"),
        (("link", str(empty)), "no .gguf model file"),
        (("rm", "nope"), "nope"),
        (("cp", "nope", "other"), "nope"),
        (("show", "nope"), "nope"),
        (("link", str(write_gguf(tmp_path / "a.gguf")), "--name", "../../etc/passwd"), "name"),
    ]
    for args, words in cases:
        result = iaforall(*args, home=home)
        assert result.returncode != 0, (args, result.stdout)
        assert words.lower() in result.stderr.lower(), (args, result.stderr)
        assert "Traceback" not in result.stderr
