"""Hostile input on the command line and in configuration files.

Entry points: a file named on the command line (``connector map``, ``connector check
--config``, mapping files) and the YAML of a configuration or mapping. Families: every
special file type (folder, FIFO, device, symbolic links to each), names too long in bytes,
with control and bidi characters; YAML alias expansion and nesting at limit−1, limit,
limit+1, and far past; deep and duplicated JSON records; a reader closing the pipe.
Invariant: an exact message and a non-zero status, never a traceback, never a hang.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from connector.cli import main
from connector.config import load_config
from connector.errors import ConfigurationError
from connector.mapping.yamlsource import load_located
from connector.yamlguard import YamlTooComplex, check_yaml
from tests.mapping.conftest import DIRECTORY_FILE, EXAMPLES, MAPPINGS

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]


def _device(path: Path) -> None:
    try:
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")


def _link_to(make: Callable[[Path], None]) -> Callable[[Path], None]:
    def create(path: Path) -> None:
        target = path.with_name("target-" + path.name)
        make(target)
        path.symlink_to(target)

    return create


SPECIAL: dict[str, tuple[Callable[[Path], None], str]] = {
    "folder": (Path.mkdir, "folder"),
    "fifo": (os.mkfifo, "named pipe"),
    "device": (_device, "device"),
    "link-to-folder": (_link_to(Path.mkdir), "folder"),
    "link-to-fifo": (_link_to(os.mkfifo), "named pipe"),
    "dangling-link": (lambda p: p.symlink_to(p.with_name("nowhere")), "no such file"),
}


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    started = time.monotonic()
    code = main(list(args))
    assert time.monotonic() - started < 30  # never a hang
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, err


# ---------------------------------------------------------------------------- configuration
@pytest.mark.parametrize("kind", sorted(SPECIAL))
def test_a_special_file_as_configuration(tmp_path: Path, kind: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    make, words = SPECIAL[kind]
    path = tmp_path / "connector.yaml"
    make(path)
    with pytest.raises(ConfigurationError) as refused:
        load_config(path)
    assert words in refused.value.message
    code, err = _run(capsys, "check", "--config", str(path))
    assert code != 0 and words in err


@pytest.mark.parametrize("kind", sorted(SPECIAL))
def test_a_special_file_as_mapping(tmp_path: Path, kind: str) -> None:
    make, words = SPECIAL[kind]
    path = tmp_path / "mapping.yaml"
    make(path)
    started = time.monotonic()
    with pytest.raises(ConfigurationError) as refused:
        load_located(path)
    assert time.monotonic() - started < 5
    assert words in str(refused.value) or "not found" in str(refused.value)


NAMES = {
    "too-long-in-bytes": "ư" * 130 + ".yaml",
    "control": "conf\x1b[2J\n.yaml",
    "bidi": "conf\u202elmay.yaml",
    "reserved": "CON",
}


@pytest.mark.parametrize("label", sorted(NAMES))
def test_odd_configuration_names_give_a_message(tmp_path: Path, label: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / NAMES[label]
    if label != "too-long-in-bytes":
        path.write_text("agency: [", "utf-8")  # present, and broken YAML
    code, err = _run(capsys, "check", "--config", str(path))
    assert code != 0 and err.strip()


def _flat_list(nodes: int) -> str:
    return "[" + ",".join("1" for _ in range(nodes - 1)) + "]"  # the list itself + items


@pytest.mark.parametrize("delta", [-1, 0, 1])
def test_yaml_size_once_expanded_at_the_limit(delta: int) -> None:
    limit = 500
    text = _flat_list(limit + delta)
    if delta > 0:
        with pytest.raises(YamlTooComplex):
            check_yaml(text, max_nodes=limit)
    else:
        check_yaml(text, max_nodes=limit)


@pytest.mark.parametrize("delta", [-1, 0, 1])
def test_yaml_nesting_at_the_limit(delta: int) -> None:
    limit = 20
    depth = limit + delta
    text = "[" * depth + "]" * depth
    if delta > 0:
        with pytest.raises(YamlTooComplex, match="nests deeper"):
            check_yaml(text, max_depth=limit)
    else:
        check_yaml(text, max_depth=limit)


def _alias_bomb(levels: int, width: int = 9) -> str:
    lines = ["l0: &l0 [" + ",".join(["lol"] * width) + "]"]
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [" + ",".join([f"*l{level - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


BOMBS = {
    "aliases-9^9": _alias_bomb(9),
    "aliases-2^40": _alias_bomb(40, 2),
    "aliases-in-mapping-keys": "a: &a {x: 1, y: 2}\n" + "".join(
        f"b{i}: &b{i} {{p: *{'a' if i == 0 else f'b{i - 1}'}, q: *{'a' if i == 0 else f'b{i - 1}'}}}\n"
        for i in range(40)),
    "nesting-10000-flow": "a: " + "[" * 10_000 + "]" * 10_000 + "\n",
    "nesting-10000-maps": "a: " + "{b: " * 10_000 + "1" + "}" * 10_000 + "\n",
    "nesting-block": "".join("  " * i + f"k{i}:\n" for i in range(2_000)) + "  " * 2_000 + "v\n",
}


@pytest.mark.parametrize("bomb", sorted(BOMBS))
def test_yaml_bombs_in_configuration_and_mappings(
        tmp_path: Path, bomb: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMBS[bomb], "utf-8")
    code, err = _run(capsys, "check", "--config", str(path))
    assert code != 0 and "refused" in err
    with pytest.raises(ConfigurationError):
        load_located(path)


def test_shipped_configurations_and_mappings_pass_the_guard() -> None:
    for path in [*ROOT.joinpath("config").glob("*.yaml"), *MAPPINGS.glob("*.yaml")]:
        check_yaml(path.read_text("utf-8"))


# ---------------------------------------------------------------------------- connector map
def _map(capsys: pytest.CaptureFixture[str], record: Path) -> tuple[int, str]:
    return _run(capsys, "map", "--mapping", str(MAPPINGS / "qlvb-json.yaml"),
                "--directory", str(DIRECTORY_FILE), str(record))


@pytest.mark.parametrize("depth", [1_000, 100_000, 1_000_000])
def test_deep_json_in_connector_map(tmp_path: Path, depth: int,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"a": ' + "[" * depth + "]" * depth + "}", "utf-8")
    code, err = _map(capsys, path)
    assert code != 0 and err.strip()


def test_duplicated_keys_in_connector_map(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    text = (EXAMPLES / "qlvb-json" / "01-ordinary.json").read_text("utf-8")
    path = tmp_path / "dup.json"
    path.write_text(text.replace('"do_mat": "Thường"', '"do_mat": "Tối mật", "do_mat": "Thường"'),
                    "utf-8")
    code, err = _map(capsys, path)
    assert code != 0 and "record_malformed" in err and "repeats the key" in err


# ---------------------------------------------------------------------------- broken pipes
def test_a_closed_pipe_ends_a_command_quietly() -> None:
    program = (
        "import sys\n"
        "from connector.cli import _run_quietly\n"
        "def command():\n"
        "    for i in range(200000):\n"
        "        print('line', i)\n"
        "    return 0\n"
        "sys.exit(_run_quietly('connector test', command))\n"
    )
    reader = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, cwd=ROOT)
    assert reader.stdout is not None and reader.stderr is not None
    reader.stdout.read(10)
    reader.stdout.close()  # like `| head -c 10`
    err = reader.stderr.read().decode()
    assert reader.wait(30) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_a_real_command_piped_into_head() -> None:
    record = EXAMPLES / "qlvb-json" / "03-attachments.json"
    command = (f"{sys.executable} -m connector map --mapping {MAPPINGS / 'qlvb-json.yaml'} "
               f"--directory {DIRECTORY_FILE} {record} | head -c 1")
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


@pytest.mark.parametrize("error, code", [
    (RecursionError("maximum recursion depth exceeded"), 1),
    (ConfigurationError("bad input", reason="config_unreadable"), 1),
    (PermissionError(13, "Permission denied", "/etc/shadow"), 1),
    (IsADirectoryError(21, "Is a directory", "/tmp"), 1),
    (KeyboardInterrupt(), 130),
])
def test_input_errors_end_as_one_line(error: BaseException, code: int,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    from connector.cli import _run_quietly

    def command() -> int:
        raise error

    assert _run_quietly("connector test", command) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") <= 1
