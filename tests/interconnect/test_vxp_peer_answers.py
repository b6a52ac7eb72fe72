"""Answers as other hubs and proxies in front of them write them, each form read the same.

Generated families: the package in ``getEdoc``'s ``data`` in every base64 layout a Java or
.NET hub writes (MIME lines, CRLF or LF, no padding, spaces); empty lists written as null,
[], {} or ""; bodies gzip-compressed, with a UTF-8 byte order mark, under any Content-Type.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable

import httpx
import pytest

from connector.errors import ConfigurationError, PermanentError
from connector.interconnect import Secret, VxpClient, VxpSettings

PACKAGE = ("<?xml version='1.0'?><edXML>" + "Văn bản liên thông " * 40 + "</edXML>").encode()
STANDARD = base64.b64encode(PACKAGE).decode()


def _wrapped(text: str, width: int, eol: str) -> str:
    return eol.join(text[i : i + width] for i in range(0, len(text), width)) + eol


LAYOUTS: dict[str, Callable[[bytes], str]] = {
    "standard": lambda b: base64.b64encode(b).decode(),
    "mime crlf": lambda b: _wrapped(base64.b64encode(b).decode(), 76, "\r\n"),
    "pem lf": lambda b: _wrapped(base64.b64encode(b).decode(), 64, "\n"),
    "no padding": lambda b: base64.b64encode(b).decode().rstrip("="),
    "no padding, wrapped": lambda b: _wrapped(base64.b64encode(b).decode().rstrip("="), 76, "\n"),
    "spaces": lambda b: " ".join(base64.b64encode(b).decode()[i : i + 4]
                                 for i in range(0, len(base64.b64encode(b)), 4)),
}


def _client(handler: Callable[[httpx.Request], httpx.Response]) -> VxpClient:
    settings = VxpSettings(endpoint="https://hub.example.gov.vn/vxp", systemid="vxp.test",
                           secret=Secret("peer-answers-secret"))
    return VxpClient(settings, transport=httpx.MockTransport(handler))


@pytest.mark.parametrize("size", [1, 2, 3, 100, len(PACKAGE)])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_get_edoc_base64_in_every_layout(layout: str, size: int) -> None:
    package = PACKAGE[:size]
    data = LAYOUTS[layout](package)
    answer = {"status": "OK", "ErrorCode": "0", "data": data}
    with _client(lambda r: httpx.Response(200, json=answer)) as client:
        assert client.fetch("1") == package


@pytest.mark.parametrize("empty", [None, [], {}, ""], ids=["null", "list", "object", "string"])
@pytest.mark.parametrize("call", ["pending", "directory"])
def test_an_empty_list_in_any_form_is_empty(call: str, empty: object) -> None:
    answer = {"status": "OK", "ErrorCode": "0", "data": empty}
    with _client(lambda r: httpx.Response(200, json=answer)) as client:
        found = client.pending("edoc") if call == "pending" else client.directory()
    assert found == []


@pytest.mark.parametrize("empty", [None, [], {}, ""], ids=["null", "list", "object", "string"])
def test_the_edoc_rest_client_reads_empty_lists_alike(empty: object) -> None:
    from connector.interconnect.edoc_rest import _entries

    assert _entries({"code": "0", "data": empty}, "getPendingDocIds", "hub") == []
    assert _entries({"data": {"docId": "7"}}, "getPendingDocIds", "hub") == [{"docId": "7"}]


BODIES: dict[str, Callable[[bytes], tuple[bytes, dict[str, str]]]] = {
    "plain": lambda b: (b, {"Content-Type": "application/json"}),
    "charset": lambda b: (b, {"Content-Type": "application/json; charset=UTF-8"}),
    "text/html label": lambda b: (b, {"Content-Type": "text/html;charset=utf-8"}),
    "no content type": lambda b: (b, {}),
    "gzip": lambda b: (gzip.compress(b), {"Content-Type": "application/json",
                                          "Content-Encoding": "gzip"}),
    "bom": lambda b: (b"\xef\xbb\xbf" + b, {"Content-Type": "application/json"}),
}


@pytest.mark.parametrize("form", sorted(BODIES))
def test_answer_bodies_in_every_form(form: str) -> None:
    raw = json.dumps({"status": "OK", "ErrorCode": 0, "data": STANDARD}).encode()
    content, headers = BODIES[form](raw)
    with _client(lambda r: httpx.Response(200, content=content, headers=headers)) as client:
        assert client.fetch("1") == PACKAGE


PAGES = {
    "nginx 404": (404, "<html><head><title>404 Not Found</title></head><body>nginx</body></html>"),
    "empty 404": (404, ""),
    "405 page": (405, "<!DOCTYPE html><p>Method Not Allowed</p>"),
}


@pytest.mark.parametrize("call", ["send", "pending", "fetch", "acknowledge", "directory"])
@pytest.mark.parametrize("page", sorted(PAGES))
def test_a_web_server_page_for_a_missing_path_is_the_endpoint_not_the_package(
    page: str, call: str
) -> None:
    code, body = PAGES[page]
    with (
        _client(lambda r: httpx.Response(code, text=body)) as client,
        pytest.raises(ConfigurationError) as caught,
    ):
        _call(client, call)
    assert caught.value.reason == "hub_endpoint" and "hub.endpoint" in str(caught.value)


@pytest.mark.parametrize("call", ["send", "fetch"])
def test_a_hub_404_about_the_item_stays_the_items(call: str) -> None:
    answer = {"status": "FAIL", "ErrorCode": "1404", "ErrorDesc": "không có văn bản"}
    with (
        _client(lambda r: httpx.Response(404, json=answer)) as client,
        pytest.raises(PermanentError, match="1404"),
    ):
        _call(client, call)


def _call(client: VxpClient, call: str) -> object:
    if call == "send":
        return client.send(PACKAGE, message_type="edoc", sender="000.00.00.G22",
                           to=["000.00.00.H41"])
    if call == "pending":
        return client.pending("edoc")
    if call == "fetch":
        return client.fetch("1")
    if call == "acknowledge":
        return client.acknowledge("1", True)
    return client.directory()
