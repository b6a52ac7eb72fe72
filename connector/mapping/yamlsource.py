"""YAML read with line numbers, and the error that points at a line of a mapping file.

``load_located(path)`` returns plain Python data (dicts, lists, scalars) together with a
``Locations`` table from key paths (``("document", "subject", "transform", 1)``) to the
line and column where that node starts, so every later check can say *where* the problem
is. Duplicate keys are refused (YAML silently keeps the last one). Only the safe YAML
subset is read (no tags, no Python objects). This module must not know what a mapping means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from connector.edxml.inputfile import InputFileError, read_package_file
from connector.errors import ConfigurationError
from connector.yamlguard import MAX_YAML_BYTES, YamlTooComplex, check_yaml

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Issue:
    """One problem in a configuration file: where, what, and what to do about it."""

    file: str
    loc: Loc
    line: int | None
    column: int | None
    message: str
    hint: str = ""

    @property
    def where(self) -> str:
        dotted = format_loc(self.loc)
        place = self.file
        if self.line is not None:
            place += f":{self.line}"
            if self.column is not None:
                place += f":{self.column}"
        return f"{place}: {dotted}" if dotted else place

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}"
        return f"{text} — {self.hint}" if self.hint else text


class MappingFileError(ConfigurationError):
    """A mapping or directory file is wrong; ``issues`` lists every problem found."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues = tuple(issues)
        first = str(self.issues[0]) if self.issues else "invalid mapping file"
        more = f" (and {len(self.issues) - 1} more problem(s))" if len(self.issues) > 1 else ""
        super().__init__(first + more, reason="mapping_invalid", stage="mapping")


def format_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass
class Locations:
    file: str
    marks: dict[Loc, tuple[int, int]] = field(default_factory=dict)

    def find(self, loc: Loc) -> tuple[int | None, int | None]:
        """Line/column of ``loc``, or of its nearest located ancestor."""
        probe = tuple(loc)
        while True:
            mark = self.marks.get(probe)
            if mark is not None:
                return mark
            if not probe:
                return None, None
            probe = probe[:-1]

    def issue(self, loc: Loc, message: str, hint: str = "") -> Issue:
        line, column = self.find(loc)
        return Issue(self.file, tuple(loc), line, column, message, hint)


def _construct(
    node: yaml.Node, loc: Loc, locs: Locations, problems: list[Issue], loader: yaml.SafeLoader
) -> Any:
    locs.marks[loc] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                problems.append(locs.issue(loc, "YAML merge keys (<<) are not supported",
                                           "write the keys out"))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                problems.append(locs.issue(loc, "a key must be a plain word", "fix the key"))
                continue
            key = str(key_node.value)
            if key in result:
                line = key_node.start_mark.line + 1
                problems.append(Issue(locs.file, (*loc, key), line, key_node.start_mark.column + 1,
                                      f"key {key!r} appears twice", "keep only one of them"))
                continue
            child_loc = (*loc, key)
            result[key] = _construct(value_node, child_loc, locs, problems, loader)
            locs.marks[child_loc] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _construct(item, (*loc, i), locs, problems, loader)
            for i, item in enumerate(node.value)
        ]
    if isinstance(node, yaml.ScalarNode):
        try:
            return loader.construct_object(node)
        except yaml.YAMLError as exc:
            problems.append(locs.issue(loc, f"unreadable value: {exc}", "quote it as a string"))
            return None
    problems.append(locs.issue(loc, "unsupported YAML node"))  # pragma: no cover
    return None


def load_located(path: Path, text: str | None = None) -> tuple[Any, Locations]:
    """Read a YAML file into plain data plus a location table, or raise MappingFileError."""
    name = str(path)
    locs = Locations(name)
    if text is None:
        try:
            text = read_package_file(str(path), max_bytes=MAX_YAML_BYTES).decode("utf-8")
        except InputFileError as exc:
            plain = str(exc).split(" (name the package files", 1)[0]
            raise MappingFileError([Issue(name, (), None, None, f"cannot read file: {plain}",
                                          "name a regular YAML file")]) from None
        except FileNotFoundError:
            raise MappingFileError([Issue(name, (), None, None, "file not found",
                                          "check the path")]) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise MappingFileError([Issue(name, (), None, None, f"cannot read file: {exc}",
                                          "the file must be UTF-8 text")]) from None
    try:
        check_yaml(text)  # depth and alias expansion bounded before anything recurses
    except YamlTooComplex as exc:
        raise MappingFileError([Issue(name, (), exc.line, None, f"refused: the YAML {exc}",
                                      "write the mapping out plainly")]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        raise MappingFileError([Issue(name, (), line, column,
                                      f"not valid YAML: {exc.problem or exc}",
                                      "fix the YAML syntax (indentation, quotes, colons)")]
                               ) from None
    except yaml.YAMLError as exc:
        raise MappingFileError([Issue(name, (), None, None, f"not valid YAML: {exc}",
                                      "fix the YAML syntax")]) from None
    if node is None:
        raise MappingFileError([Issue(name, (), 1, 1, "the file is empty",
                                      "write the mapping (see mappings/README.md)")])
    problems: list[Issue] = []
    data = _construct(node, (), locs, problems, yaml.SafeLoader(""))
    if problems:
        raise MappingFileError(problems)
    return data, locs
