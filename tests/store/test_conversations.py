"""The conversation store on a real SQLite file and a real PostgreSQL server, migrated by the
real Alembic (the `store` fixture, in conftest.py, runs each test on both)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text

from iaforall.core.errors import InvalidRequest, NotFound
from iaforall.core.types import ConversationId, Usage
from iaforall.store.conversations import (
    Conversations,
    MessageView,
    NewImage,
    NewMessage,
    Said,
    Turn,
    plan_turn,
)
from iaforall.store.database import MIGRATIONS, Database


def _messages(*roles_and_texts: tuple[str, str]) -> list[MessageView]:
    now = datetime.now(UTC)
    return [
        MessageView(str(i), role, text, None, "complete", None, None, now)
        for i, (role, text) in enumerate(roles_and_texts)
    ]


CHAT = _messages(("user", "a"), ("assistant", "A"), ("user", "b"), ("assistant", "B"))
# A picture drawn in between (its content is the prompt): the chat model never sees it.
DRAWN = _messages(
    ("picture", "a kite"), ("user", "a"), ("assistant", "A"), ("picture", "a red kite")
)


@pytest.mark.parametrize(
    ("messages", "action", "content", "expected"),
    [
        ([], "send", "hi", Turn(0, "hi", (("user", "hi"),))),
        (CHAT, "send", "c", Turn(4, "c", (*((m.role, m.content) for m in CHAT), ("user", "c")))),
        (
            CHAT,
            "regenerate",
            None,
            Turn(3, None, (("user", "a"), ("assistant", "A"), ("user", "b"))),
        ),
        (
            CHAT[:3],
            "regenerate",
            None,
            Turn(3, None, (("user", "a"), ("assistant", "A"), ("user", "b"))),
        ),
        (CHAT, "edit", "b2", Turn(2, "b2", (("user", "a"), ("assistant", "A"), ("user", "b2")))),
        # An answer stopped before its first word is not sent back to the model.
        (
            _messages(("user", "a"), ("assistant", "")),
            "send",
            "b",
            Turn(2, "b", (("user", "a"), ("user", "b"))),
        ),
        (DRAWN, "send", "b", Turn(4, "b", (("user", "a"), ("assistant", "A"), ("user", "b")))),
        (DRAWN[:1], "send", "b", Turn(1, "b", (("user", "b"),))),
        # Everything after the last user message is replaced, the picture drawn after it too.
        (DRAWN, "regenerate", None, Turn(2, None, (("user", "a"),))),
        (DRAWN, "edit", "a2", Turn(1, "a2", (("user", "a2"),))),
    ],
)
def test_plan_turn(messages, action, content, expected):  # type: ignore[no-untyped-def]
    turn = plan_turn(messages, action, content)
    history = tuple(Said(*said) for said in expected.history)
    assert turn == Turn(expected.keep, expected.user, history)


@pytest.mark.parametrize(
    ("messages", "action", "content", "param"),
    [
        ([], "send", "  ", "content"),
        ([], "regenerate", None, "action"),
        ([], "edit", "x", "action"),
        (CHAT, "edit", "", "content"),
    ],
)
def test_plan_turn_refuses(messages, action, content, param):  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidRequest) as caught:
        plan_turn(messages, action, content)
    assert caught.value.param == param


def test_migrations_create_the_schema_and_run_again_harmlessly(database_url: str) -> None:
    database = Database(database_url)
    database.upgrade()
    database.upgrade()
    with database.engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        version = connection.execute(text("select version_num from alembic_version")).scalar()
    database.close()
    assert {"conversations", "messages", "alembic_version"} <= tables
    newest = max(p.name.split("_")[0] for p in (MIGRATIONS / "versions").glob("0*.py"))
    assert version == newest


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    Database(f"sqlite:///{path}").upgrade()
    with sqlite3.connect(path) as raw:
        assert raw.execute("pragma journal_mode").fetchone()[0] == "wal"


def test_a_turn_and_its_answer_are_stored_in_order(store: Conversations) -> None:
    conversation = store.create("local", model="m")
    turn = plan_turn(conversation.messages, "send", "Bonjour, comment ça va ?")
    user_message = store.begin_turn("local", conversation.id, turn, None)
    assert user_message is not None and user_message.content == "Bonjour, comment ça va ?"
    store.save_answer(
        "local", conversation.id, "a1", content="Bien !", model="m", status="complete",
        usage=Usage(5, 3),
    )  # fmt: skip
    found = store.get("local", conversation.id)
    assert [(m.role, m.content) for m in found.messages] == [
        ("user", "Bonjour, comment ça va ?"),
        ("assistant", "Bien !"),
    ]
    assert found.messages[1].usage == Usage(5, 3)
    assert found.title == "Bonjour, comment ça va ?"  # from the first message
    assert found.created_at.tzinfo is not None and found.updated_at > found.created_at

    # Regenerating drops the answer; editing drops the question and what follows.
    store.begin_turn("local", conversation.id, plan_turn(found.messages, "regenerate", None), None)
    assert [m.role for m in store.get("local", conversation.id).messages] == ["user"]
    edit = plan_turn(store.get("local", conversation.id).messages, "edit", "Salut")
    store.begin_turn("local", conversation.id, edit, "other")
    again = store.get("local", conversation.id)
    assert [m.content for m in again.messages] == ["Salut"]
    assert again.model == "other"


def test_conversations_belong_to_their_owner(store: Conversations) -> None:
    mine = store.create("alice", title="alice's")
    store.create("bob", title="bob's")
    assert [c.title for c in store.list("alice")] == ["alice's"]
    for attempt in (
        lambda: store.get("bob", mine.id),
        lambda: store.update("bob", mine.id, title="taken"),
        lambda: store.delete("bob", mine.id),
    ):
        with pytest.raises(NotFound):
            attempt()
    assert store.get("alice", mine.id).title == "alice's"


def test_search_finds_titles_and_contents_case_insensitively(store: Conversations) -> None:
    store.create("local", title="Recettes", messages=[NewMessage("user", "Des crêpes ?")])
    store.create(
        "local",
        title="Maths",
        messages=[NewMessage("user", "x" * 200 + " What is 100% of 7_2? " + "y" * 200)],
    )
    assert [c.title for c in store.list("local", "RECETTES")] == ["Recettes"]
    assert [c.title for c in store.list("local", "crêpes")] == ["Recettes"]
    assert [c.title for c in store.list("local", "CREPES")] == ["Recettes"]  # accents too
    found = store.list("local", "100% of 7_2")  # LIKE wildcards are taken literally
    assert [c.title for c in found] == ["Maths"]
    assert found[0].snippet is not None and "100% of 7_2" in found[0].snippet
    assert len(found[0].snippet) < 120
    assert store.list("local", "50%") == []
    assert [c.message_count for c in store.list("local")] == [1, 1]


def test_updates_merge_settings_and_delete_removes_messages(store: Conversations) -> None:
    conversation = store.create(
        "local", settings={"temperature": 0.2}, messages=[NewMessage("user", "x")]
    )
    store.update("local", conversation.id, settings={"max_tokens": 10}, title="T")
    updated = store.get("local", conversation.id)
    assert updated.settings == {"temperature": 0.2, "max_tokens": 10}
    assert updated.title == "T"
    store.delete("local", conversation.id)
    assert store.list("local") == []
    with pytest.raises(NotFound):
        store.save_answer("local", conversation.id, "z", content="", model="m", status="stopped")


@pytest.mark.parametrize(
    ("stored", "query"),
    [
        ("Tiếng Việt", "tieng viet"),  # stacked accents
        ("Ångström", "ANGSTROM"),
        ("Ελληνικά", "ΕΛΛΗΝΙΚΑ"),  # Greek accents and case
        ("ὁδός", "ΟΔΟΣ"),  # a final sigma, and breathings
        ("Straße", "STRASSE"),
        ("un ﬁlm", "film"),  # a ligature, decomposed
        ("ＡＢＣ１２３", "abc123"),  # full-width forms  # noqa: RUF001
        ("Ça coûte 5/6 d'un œuf", "5/6"),  # the LIKE escape character, literally
        ("Привет, Мир", "мир"),  # Cyrillic case
    ],
)
def test_search_folds_text_the_same_on_every_database(
    store: Conversations, stored: str, query: str
) -> None:
    store.create("local", title="found", messages=[NewMessage("user", stored)])
    store.create("local", title="other", messages=[NewMessage("user", "nothing to see")])
    assert [c.title for c in store.list("local", query)] == ["found"]
    assert [c.title for c in store.list("local", stored)] == ["found"]  # itself, always


def test_timestamps_and_settings_survive_the_round_trip(store: Conversations) -> None:
    written = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    settings = {"temperature": 0.7, "stop": ["\n\n", "é"], "nested": {"a": [1, None, True]}}
    created = store.create(
        "local",
        title="t" * 200,
        model="m" * 200,
        system_prompt="s" * 20_000,
        settings=settings,
        messages=[NewMessage("user", "x" * 100_000, created_at=written)],
    )
    found = store.get("local", created.id)
    assert found.settings == settings
    assert found.messages[0].created_at == written  # microseconds and UTC kept
    assert found.created_at.tzinfo is not None
    assert len(found.title) == 200 and len(found.messages[0].content) == 100_000


PNG = b"\x89PNG\r\n\x1a\n not checked here: the API checks images before the store"


def test_images_are_stored_with_their_message_for_their_owner_only(store: Conversations) -> None:
    conversation = store.create("alice")
    photo = NewImage("image/png", "note.png", PNG)
    turn = plan_turn(conversation.messages, "send", "", [photo])  # an image alone is a message
    assert turn.history == (Said("user", "", (photo.id,)),)
    sent = store.begin_turn("alice", conversation.id, turn, None, [photo])
    assert sent is not None and [i.name for i in sent.images] == ["note.png"]
    found = store.get("alice", conversation.id)
    assert found.title == "note.png"
    (ref,) = found.messages[0].images
    assert (ref.media_type, ref.size) == ("image/png", len(PNG))
    assert store.image("alice", conversation.id, ref.id).data == PNG
    assert store.images("alice", [ref.id])[ref.id].data == PNG
    assert store.images("bob", [ref.id]) == {}
    with pytest.raises(NotFound):
        store.image("bob", conversation.id, ref.id)

    # An edit keeps the images of the message it replaces unless it brings its own.
    edit = plan_turn(found.messages, "edit", "What does it say?")
    assert edit.images == (ref,) and edit.history[-1].images == (ref.id,)
    replaced = plan_turn(found.messages, "edit", "And this one?", [])
    assert replaced.images == () and replaced.history[-1].images == ()
    # Rewriting the turn drops the old message and its images with it.
    store.begin_turn("alice", conversation.id, replaced, None)
    assert store.images("alice", [ref.id]) == {}
    assert store.get("alice", conversation.id).messages[0].images == ()


def test_a_picture_is_kept_at_the_end_for_its_owner_only(store: Conversations) -> None:
    conversation = store.create("alice")
    drawn = NewImage("image/png", "image-7.png", PNG)
    picture = store.add_picture("alice", conversation.id, "a red kite", "tiny-draw", drawn)
    assert (picture.role, picture.content, picture.model) == ("picture", "a red kite", "tiny-draw")
    assert [i.name for i in picture.images] == ["image-7.png"]
    turn = plan_turn(store.get("alice", conversation.id).messages, "send", "Hello")
    store.begin_turn("alice", conversation.id, turn, None)
    assert turn.history == (Said("user", "Hello"),)  # the picture is not the chat model's
    store.add_picture(
        "alice", conversation.id, "another", "tiny-draw", NewImage("image/png", "b", PNG)
    )
    found = store.get("alice", conversation.id)
    assert found.title == "a red kite"  # from the first prompt: the conversation had none
    assert [m.role for m in found.messages] == ["picture", "user", "picture"]
    assert store.image("alice", conversation.id, picture.images[0].id).data == PNG
    with pytest.raises(NotFound):
        store.add_picture("bob", conversation.id, "mine", "tiny-draw", drawn)


def test_imported_messages_keep_their_images(store: Conversations) -> None:
    image = NewImage("image/jpeg", "scan.jpg", b"\xff\xd8\xff" + bytes(range(256)))
    created = store.create("alice", messages=[NewMessage("user", "Read this", images=(image,))])
    (ref,) = created.messages[0].images
    assert store.image("alice", created.id, ref.id).data == image.data


def test_conversations_from_before_keep_the_models_builtin_prompt(database_url: str) -> None:
    """Upgrading a database of the previous schema: its conversations get
    `remove_builtin_prompt` false (the model's own default), and new ones may set it."""
    database = Database(database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0009")
        connection.execute(
            text(
                "insert into conversations (id, owner, title, system_prompt, settings, knowledge,"
                " created_at, updated_at) values ('c1', 'me', 'old', '', '{}', '[]',"
                " '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )
    database.upgrade()
    store = Conversations(database)
    assert store.get("me", ConversationId("c1")).remove_builtin_prompt is False
    made = store.create("me", remove_builtin_prompt=True)
    assert store.get("me", made.id).remove_builtin_prompt is True
    database.close()
