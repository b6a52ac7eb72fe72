"""Files the connector reads at run time from its own installed package.

The XSDs ship inside the wheel as ``connector/schemas/*.xsd`` (in the repository that folder
is a link to ``schemas/``), found through ``importlib.resources`` so an installed connector
never depends on the source tree. ``load_schemas`` compiles them once at start so a broken
installation stops ``run`` with the reason instead of failing every record. This module
must not validate documents itself (that is ``connector.edxml.schema``).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from lxml import etree

from connector.errors import ConfigurationError

SCHEMAS_ENV = "CONNECTOR_SCHEMAS"  # an operator's override, read by connector.edxml.schema
SCHEMA_FILES = ("edoc.xsd", "status.xsd")


def packaged_schemas_dir() -> Path:
    """The XSD folder of the installed package (a real folder: wheels install unzipped)."""
    return Path(str(resources.files("connector").joinpath("schemas")))


def chosen_schemas_dir() -> Path:
    """The operator's XSD folder (``CONNECTOR_SCHEMAS``), else the packaged one."""
    chosen = os.environ.get(SCHEMAS_ENV)
    return Path(chosen) if chosen else packaged_schemas_dir()


def load_schemas(folder: Path | None = None) -> Path:
    """Compile every XSD once; raise ConfigurationError naming the file and the reason."""
    where = folder if folder is not None else chosen_schemas_dir()
    for name in SCHEMA_FILES:
        path = where / name
        try:
            etree.XMLSchema(etree.parse(str(path)))
        except OSError as exc:
            raise ConfigurationError(
                f"schemas: cannot read {path}: {exc} (a broken installation: reinstall the "
                f"connector, or set {SCHEMAS_ENV} to the folder holding {', '.join(SCHEMA_FILES)})",
                reason="schemas_missing",
            ) from None
        except (etree.XMLSyntaxError, etree.XMLSchemaParseError) as exc:
            raise ConfigurationError(
                f"schemas: {path} is not a usable XML schema: {exc}",
                reason="schemas_invalid",
            ) from None
    return where
