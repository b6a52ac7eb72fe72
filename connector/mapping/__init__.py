"""YAML mappings between agency records and edXML, both directions (one file per format).

The daemon's API (see ``mappingset`` for the details and mappings/README.md for the file
format)::

    load_mappings(folder, directory_file, default=None) -> MappingSet
    MappingSet.get(name | None) -> LocalFormat
    LocalFormat.record_id(body) -> str
    LocalFormat.classify(record) -> Classification            # the R2 gate alone
    LocalFormat.record_to_package(record, *, attachments_dir, now=None) -> EdocPackage
    LocalFormat.command_to_status(command, *, own, now=None) -> StatusPackage
    LocalFormat.package_to_record(pkg) -> LocalDocument(body, content_type, files)
    LocalFormat.status_to_event(pkg) -> LocalDocument
"""

from connector.mapping.classification import Classification, ClassificationRefused
from connector.mapping.directory import Directory, UnknownOrganization, load_directory
from connector.mapping.mappingset import LocalFormat, MappingSet, load_format, load_mappings
from connector.mapping.paths import RecordSyntaxError
from connector.mapping.reverse import LocalDocument
from connector.mapping.values import RecordError
from connector.mapping.yamlsource import Issue, MappingFileError

__all__ = [
    "Classification",
    "ClassificationRefused",
    "Directory",
    "Issue",
    "LocalDocument",
    "LocalFormat",
    "MappingFileError",
    "MappingSet",
    "RecordError",
    "RecordSyntaxError",
    "UnknownOrganization",
    "load_directory",
    "load_format",
    "load_mappings",
]
