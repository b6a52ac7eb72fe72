"""Bounds on YAML text before anything builds objects from it (configuration, mappings).

PyYAML's composer and constructor recurse once per nesting level (10,000 levels end in
``RecursionError``), and aliases make a few lines stand for billions of nodes (the "billion
laughs" of YAML): walking the loaded data then never ends. ``check_yaml`` reads the event
stream, which PyYAML produces without recursion, and counts the nesting depth and the number
of nodes the document stands for once every alias is expanded; it raises ``YamlTooComplex``
(with the line) past the bounds. This module must not know what the YAML configures.
"""

from __future__ import annotations

import yaml

MAX_DEPTH = 64  # nested mappings/lists; real files use fewer than 10
MAX_NODES = 200_000  # nodes, aliases expanded; a real configuration has a few hundred
MAX_CHARS = 4 * 1024 * 1024
MAX_YAML_BYTES = 4 * MAX_CHARS  # a file read for YAML: at most this many bytes


class YamlTooComplex(ValueError):
    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


def check_yaml(text: str, *, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES) -> None:
    """Raise ``YamlTooComplex`` when ``text`` nests too deeply or expands too far.

    Syntax errors are left to the caller's own parse (it reports them with its words)."""
    if len(text) > MAX_CHARS:
        raise YamlTooComplex(f"is {len(text)} characters long, over {MAX_CHARS}", None)
    sizes: dict[str, int] = {}  # anchor -> nodes it stands for
    anchors: list[str | None] = [None]  # per open collection (the document at the bottom)
    counts: list[int] = [0]  # nodes so far per open collection, aliases expanded
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            line = event.start_mark.line + 1 if event.start_mark is not None else None
            if isinstance(event, yaml.CollectionStartEvent):
                anchors.append(event.anchor)
                counts.append(1)
                if len(counts) - 1 > max_depth:
                    raise YamlTooComplex(f"nests deeper than {max_depth} levels", line)
                continue
            if isinstance(event, yaml.CollectionEndEvent):
                anchor, added = anchors.pop(), counts.pop()
                if anchor is not None:
                    sizes[anchor] = added
            elif isinstance(event, yaml.AliasEvent):
                added = sizes.get(str(event.anchor), 1)
            elif isinstance(event, yaml.ScalarEvent):
                added = 1
                if event.anchor is not None:
                    sizes[event.anchor] = 1
            else:
                continue
            counts[-1] += added
            if counts[-1] > max_nodes:
                raise YamlTooComplex(
                    f"stands for more than {max_nodes} values once its aliases (*name) are "
                    "expanded", line)
    except yaml.YAMLError:
        return  # the caller's parse reports it
