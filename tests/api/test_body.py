"""``api.body``: decoding request bodies into Structs, 400s naming the offending field."""

from __future__ import annotations

import msgspec
import pytest

from api.body import decode, field_of
from api.errors import ApiError


class Repo(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    url: str


class Request(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    repos: list[Repo] = []


def _error(data: bytes) -> msgspec.ValidationError:
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.json.decode(data, type=Request)
    return caught.value


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b'{"name": "a", "admin": true}', "admin"),
        (b'{"name": "a", "repos": [{"url": "u"}, {"url": "u", "branch": "x"}]}', "repos[1].branch"),
        (b'{"repos": []}', "name"),
        (b'{"name": "a", "repos": [{}]}', "repos[0].url"),
        (b'{"name": 5}', "name"),
        (b'{"name": "a", "repos": [{"url": 1}]}', "repos[0].url"),
    ],
)
def test_field_of_names_the_field(data: bytes, field: str) -> None:
    assert field_of(_error(data)) == field


def test_field_of_is_none_for_a_whole_body_error() -> None:
    assert field_of(_error(b"[]")) is None


def test_decode_unknown_field_is_400_naming_it() -> None:
    with pytest.raises(ApiError) as caught:
        decode(b'{"name": "a", "repos": [{"url": "u", "token": "x"}]}', Request)
    assert caught.value.status == 400
    assert caught.value.field == "repos[0].token"
    assert "unknown field `token`" in caught.value.message
