import pytest

from panelql.application import ids
from panelql.application.errors import BadUserInput
from panelql.application.filters import sort_key
from panelql.application.pagination import paginate
from panelql.domain.records import Ref, ResourceType


def test_ids_round_trip_and_are_opaque() -> None:
    ref = Ref("ptero-eu", ResourceType.BACKUP, "12/abc:def")
    encoded = ids.encode(ref)
    assert "ptero" not in encoded and "=" not in encoded
    assert ids.decode(encoded) == ref
    assert ids.decode(encoded, ResourceType.BACKUP) == ref


TRUNCATED = ids.encode(Ref("c", ResourceType.SERVER, "1"))[:-3] + "@@"


@pytest.mark.parametrize("bad", ["", "!!!", "U2VydmVy", TRUNCATED])
def test_bad_ids_are_bad_user_input(bad: str) -> None:
    with pytest.raises(BadUserInput):
        ids.decode(bad)


def test_wrong_type_is_rejected() -> None:
    node = ids.encode(Ref("c", ResourceType.NODE, "1"))
    with pytest.raises(BadUserInput, match="is a Node"):
        ids.decode(node, ResourceType.SERVER)


def test_natural_sort_key() -> None:
    assert sort_key("a", "9") < sort_key("a", "10") < sort_key("b", "1")


def test_cursor_pagination_is_stable_under_insertions() -> None:
    items = [str(i) for i in range(10)]
    first = paginate(items, lambda x: x.zfill(3), first=4, after=None, max_page=100,
                     default_page=50)
    assert [x for _, x in first.items] == ["0", "1", "2", "3"] and first.has_next_page
    # an item inserted before the cursor does not shift the next page
    second = paginate(["-1", *items], lambda x: x.zfill(3), first=4, after=first.end_cursor,
                      max_page=100, default_page=50)
    assert [x for _, x in second.items] == ["4", "5", "6", "7"]
    assert second.has_previous_page


@pytest.mark.parametrize("first,after", [(-1, None), (101, None), (1, "garbage")])
def test_bad_page_arguments(first: int, after: str | None) -> None:
    with pytest.raises(BadUserInput):
        paginate(["a"], str, first=first, after=after, max_page=100, default_page=50)
