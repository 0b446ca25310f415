from datetime import datetime
from typing import Any

import pytest
from httpx import AsyncClient

pytestmark = pytest.mark.anyio

ITEMS = "/api/v1/items"


async def create(client: AsyncClient, name: str, price_cents: int = 100, **fields: Any) -> Any:
    response = await client.post(ITEMS, json={"name": name, "price_cents": price_cents, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def assert_problem(body: Any, status: int, instance: str) -> None:
    assert body["type"] == "about:blank"
    assert body["status"] == status
    assert body["instance"] == instance
    assert body["title"]
    assert body["detail"]


async def test_create_returns_item_and_location(client: AsyncClient) -> None:
    response = await client.post(
        ITEMS,
        json={"name": "  Lamp  ", "description": "A desk lamp", "price_cents": 2599},
    )

    assert response.status_code == 201
    item = response.json()
    assert item["id"] == 1
    assert item["name"] == "Lamp"
    assert item["description"] == "A desk lamp"
    assert item["price_cents"] == 2599
    created_at = datetime.fromisoformat(item["created_at"])
    assert created_at.utcoffset() is not None
    assert item["updated_at"] == item["created_at"]
    assert response.headers["location"] == f"http://testserver{ITEMS}/1"


async def test_created_item_can_be_read(client: AsyncClient) -> None:
    item = await create(client, "Lamp")

    response = await client.get(f"{ITEMS}/{item['id']}")

    assert response.status_code == 200
    assert response.json() == item


@pytest.mark.parametrize(
    "payload",
    [
        {"name": "", "price_cents": 1},
        {"name": "   ", "price_cents": 1},
        {"name": "x" * 101, "price_cents": 1},
        {"name": "Lamp", "price_cents": -1},
        {"name": "Lamp"},
        {"name": "Lamp", "price_cents": 1, "description": "d" * 1001},
        {"name": "Lamp", "price_cents": 1, "colour": "red"},
        # What no column can store, or no reader expects, is refused before the database.
        {"name": "La\x00mp", "price_cents": 1},
        {"name": "Lamp\nStand", "price_cents": 1},
        {"name": "Lamp", "price_cents": 1, "description": "bell \x07"},
        {"name": "Lamp", "price_cents": 2**31},
        # A price is a JSON integer, not a boolean or a string of digits.
        {"name": "Lamp", "price_cents": True},
        {"name": "Lamp", "price_cents": "5"},
    ],
)
async def test_create_rejects_invalid_items(client: AsyncClient, payload: dict[str, Any]) -> None:
    response = await client.post(ITEMS, json=payload)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert_problem(body, 422, ITEMS)
    assert body["errors"]
    for error in body["errors"]:
        assert set(error) == {"location", "message", "type"}
        assert error["location"][0] == "body"


async def test_validation_errors_do_not_echo_input(client: AsyncClient) -> None:
    huge = "x" * 5000

    response = await client.post(ITEMS, json={"name": huge, "price_cents": 1})

    assert response.status_code == 422
    assert huge not in response.text


async def test_malformed_json_is_a_problem(client: AsyncClient) -> None:
    response = await client.post(
        ITEMS, content=b"{not json", headers={"content-type": "application/json"}
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["type"] == "json_invalid"


async def test_create_rejects_duplicate_name(client: AsyncClient) -> None:
    await create(client, "Lamp")

    response = await client.post(ITEMS, json={"name": "Lamp", "price_cents": 5})

    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert_problem(body, 409, ITEMS)
    assert body["title"] == "Conflict"
    assert "Lamp" in body["detail"]


async def test_get_missing_item_is_404_problem(client: AsyncClient) -> None:
    response = await client.get(f"{ITEMS}/42")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert_problem(body, 404, f"{ITEMS}/42")
    assert body["title"] == "Not Found"
    assert body["detail"] == "Item 42 does not exist."


@pytest.mark.parametrize("item_id", ["abc", "0", "-1", str(2**31)])
async def test_item_id_must_be_a_positive_32_bit_integer(client: AsyncClient, item_id: str) -> None:
    response = await client.get(f"{ITEMS}/{item_id}")

    assert response.status_code == 422
    assert response.json()["errors"][0]["location"] == ["path", "item_id"]


async def test_description_may_span_lines(client: AsyncClient) -> None:
    text = "First line\n\tindented second line"

    item = await create(client, "Lamp", description=text)

    assert item["description"] == text


async def test_list_is_empty_at_first(client: AsyncClient) -> None:
    response = await client.get(ITEMS)

    assert response.status_code == 200
    assert response.json() == {"items": [], "total": 0, "limit": 20, "offset": 0}


async def test_list_paginates(client: AsyncClient) -> None:
    for number in range(5):
        await create(client, f"Item {number}")

    response = await client.get(ITEMS, params={"limit": 2, "offset": 3})

    page = response.json()
    assert page["total"] == 5
    assert page["limit"] == 2
    assert page["offset"] == 3
    assert [item["name"] for item in page["items"]] == ["Item 3", "Item 4"]


async def test_list_offset_past_the_end_is_empty(client: AsyncClient) -> None:
    await create(client, "Lamp")

    response = await client.get(ITEMS, params={"offset": 10})

    assert response.json() == {"items": [], "total": 1, "limit": 20, "offset": 10}


async def test_list_filters_by_name_and_price(client: AsyncClient) -> None:
    await create(client, "Desk Lamp", 3000)
    await create(client, "Floor lamp", 9000)
    await create(client, "Lampshade", 1000)
    await create(client, "Chair", 5000)

    response = await client.get(
        ITEMS, params={"q": "LAMP", "min_price_cents": 1500, "max_price_cents": 9000}
    )

    page = response.json()
    assert page["total"] == 2
    assert [item["name"] for item in page["items"]] == ["Desk Lamp", "Floor lamp"]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("id", ["b", "c", "a"]),
        ("-id", ["a", "c", "b"]),
        ("name", ["a", "b", "c"]),
        ("-name", ["c", "b", "a"]),
        ("price_cents", ["a", "b", "c"]),
        ("-price_cents", ["c", "b", "a"]),
        ("created_at", ["b", "c", "a"]),
        ("-created_at", ["a", "c", "b"]),
    ],
)
async def test_list_sorts(client: AsyncClient, sort: str, expected: list[str]) -> None:
    await create(client, "b", 200)
    await create(client, "c", 300)
    await create(client, "a", 100)

    response = await client.get(ITEMS, params={"sort": sort})

    assert response.status_code == 200
    assert [item["name"] for item in response.json()["items"]] == expected


async def test_list_sort_ties_are_ordered_by_id(client: AsyncClient) -> None:
    await create(client, "first", 100)
    await create(client, "second", 100)

    ascending = await client.get(ITEMS, params={"sort": "price_cents"})
    descending = await client.get(ITEMS, params={"sort": "-price_cents"})

    assert [item["name"] for item in ascending.json()["items"]] == ["first", "second"]
    assert [item["name"] for item in descending.json()["items"]] == ["second", "first"]


@pytest.mark.parametrize(
    ("params", "location"),
    [
        ({"limit": 0}, ["query", "limit"]),
        ({"limit": 101}, ["query", "limit"]),
        ({"offset": -1}, ["query", "offset"]),
        ({"sort": "colour"}, ["query", "sort"]),
        ({"min_price_cents": -5}, ["query", "min_price_cents"]),
        ({"q": ""}, ["query", "q"]),
        ({"q": "a\x00"}, ["query", "q"]),
        ({"offset": 2**31}, ["query", "offset"]),
        ({"max_price_cents": 2**31}, ["query", "max_price_cents"]),
        ({"colour": "red"}, ["query", "colour"]),
        ({"min_price_cents": 500, "max_price_cents": 100}, ["query"]),
    ],
)
async def test_list_rejects_invalid_queries(
    client: AsyncClient, params: dict[str, Any], location: list[str]
) -> None:
    response = await client.get(ITEMS, params=params)

    assert response.status_code == 422
    body = response.json()
    assert_problem(body, 422, ITEMS)
    assert [error["location"] for error in body["errors"]] == [location]


async def test_patch_changes_only_given_fields(client: AsyncClient) -> None:
    item = await create(client, "Lamp", 100, description="Old")

    response = await client.patch(f"{ITEMS}/{item['id']}", json={"price_cents": 150})

    assert response.status_code == 200
    updated = response.json()
    assert updated["price_cents"] == 150
    assert updated["name"] == "Lamp"
    assert updated["description"] == "Old"
    assert updated["created_at"] == item["created_at"]
    assert updated["updated_at"] >= item["updated_at"]


async def test_patch_can_clear_description(client: AsyncClient) -> None:
    item = await create(client, "Lamp", description="Old")

    response = await client.patch(f"{ITEMS}/{item['id']}", json={"description": None})

    assert response.status_code == 200
    assert response.json()["description"] is None


async def test_patch_can_keep_own_name(client: AsyncClient) -> None:
    item = await create(client, "Lamp")

    response = await client.patch(f"{ITEMS}/{item['id']}", json={"name": "Lamp"})

    assert response.status_code == 200
    assert response.json()["name"] == "Lamp"


async def test_patch_with_empty_body_changes_nothing(client: AsyncClient) -> None:
    item = await create(client, "Lamp")

    response = await client.patch(f"{ITEMS}/{item['id']}", json={})

    assert response.status_code == 200
    assert response.json() == item


@pytest.mark.parametrize("payload", [{"name": None}, {"price_cents": None}, {"price_cents": -1}])
async def test_patch_rejects_invalid_changes(client: AsyncClient, payload: dict[str, Any]) -> None:
    item = await create(client, "Lamp")

    response = await client.patch(f"{ITEMS}/{item['id']}", json=payload)

    assert response.status_code == 422
    assert_problem(response.json(), 422, f"{ITEMS}/{item['id']}")


async def test_patch_schema_offers_null_only_where_it_is_accepted(client: AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()["components"]["schemas"]["ItemUpdate"]
    fields = schema["properties"]

    assert "required" not in schema
    assert fields["name"]["type"] == "string"
    assert fields["price_cents"]["type"] == "integer"
    assert {"type": "null"} in fields["description"]["anyOf"]
    assert not any("default" in field for field in (fields["name"], fields["price_cents"]))


async def test_patch_rejects_taken_name(client: AsyncClient) -> None:
    await create(client, "Lamp")
    chair = await create(client, "Chair")

    response = await client.patch(f"{ITEMS}/{chair['id']}", json={"name": "Lamp"})

    assert response.status_code == 409
    assert_problem(response.json(), 409, f"{ITEMS}/{chair['id']}")
    unchanged = await client.get(f"{ITEMS}/{chair['id']}")
    assert unchanged.json()["name"] == "Chair"


@pytest.mark.parametrize("payload", [{"price_cents": 1}, {}])
async def test_patch_missing_item_is_404(client: AsyncClient, payload: dict[str, Any]) -> None:
    response = await client.patch(f"{ITEMS}/7", json=payload)

    assert response.status_code == 404
    assert_problem(response.json(), 404, f"{ITEMS}/7")


async def test_delete_removes_item(client: AsyncClient) -> None:
    item = await create(client, "Lamp")

    response = await client.delete(f"{ITEMS}/{item['id']}")

    assert response.status_code == 204
    assert response.content == b""
    missing = await client.get(f"{ITEMS}/{item['id']}")
    assert missing.status_code == 404


async def test_deleted_name_can_be_reused(client: AsyncClient) -> None:
    item = await create(client, "Lamp")
    await client.delete(f"{ITEMS}/{item['id']}")

    again = await create(client, "Lamp")

    assert again["id"] != item["id"]


async def test_delete_missing_item_is_404(client: AsyncClient) -> None:
    response = await client.delete(f"{ITEMS}/3")

    assert response.status_code == 404
    assert_problem(response.json(), 404, f"{ITEMS}/3")
