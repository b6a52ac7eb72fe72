"""edXML (QCVN 102:2016): the model, hardened parsing, the wire builder and the schemas.

The public surface: ``parse_package`` (tolerant reader), ``build_package`` (strict writer),
``validate_package`` (strict XSD check of bytes), ``check_package`` (tolerant check of what
peers send), ``peek`` (routing facts without decoding attachments).
"""

from connector.edxml.builder import build_package
from connector.edxml.model import (
    NS,
    Attachment,
    Business,
    BusinessDocType,
    Code,
    DocumentType,
    EdocPackage,
    Organization,
    OtherInfo,
    Package,
    Priority,
    PromulgationInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusCode,
    StatusPackage,
    SteeringType,
    TraceHeader,
)
from connector.edxml.parser import parse_package
from connector.edxml.problems import EdxmlError, Problem
from connector.edxml.schema import CheckResult, check_package, validate_package
from connector.edxml.summary import PackageSummary, peek

__all__ = [
    "NS",
    "Attachment",
    "Business",
    "BusinessDocType",
    "CheckResult",
    "Code",
    "DocumentType",
    "EdocPackage",
    "EdxmlError",
    "Organization",
    "OtherInfo",
    "Package",
    "PackageSummary",
    "Priority",
    "Problem",
    "PromulgationInfo",
    "ResponseFor",
    "SignerInfo",
    "StaffInfo",
    "StatusCode",
    "StatusPackage",
    "SteeringType",
    "TraceHeader",
    "build_package",
    "check_package",
    "parse_package",
    "peek",
    "validate_package",
]
