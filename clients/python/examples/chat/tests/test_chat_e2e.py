"""The chat example in Chromium, over two daphne processes sharing one chanlayer server."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Locator, Page, expect

from .conftest import ARTIFACTS, LEASE_GRACE_MS, WAIT_MS, Chat, wait_for


def say(page: Page, text: str) -> None:
    """Type ``text`` in the page's input and press its send button."""
    page.bring_to_front()  # Chromium throttles background tabs.
    page.fill("#chat-message-input", text)
    page.click("#chat-message-submit")


def messages(page: Page) -> Locator:
    """The chat messages shown in the page's log, errors excluded."""
    return page.locator("#chat-log > .message:not(.error)")


def expect_count(pages: list[Page], count: int, timeout: int = WAIT_MS) -> None:
    """Wait until every page shows ``count`` people in the room."""
    for page in pages:
        expect(page.locator("#room-count")).to_have_text(str(count), timeout=timeout)


def expect_log(pages: list[Page], texts: list[str]) -> None:
    """Wait until every page's log is exactly ``texts``, in this order."""
    for page in pages:
        expect(messages(page)).to_have_text(texts, timeout=WAIT_MS)


def exchange_in_lobby(lobby: list[Page], other: Page) -> None:
    """Type messages in the room's three pages, one at a time, then all at once.

    Every page shows each message once, in the order typed; the page of another room shows
    none of them.
    """
    # One at a time: every page shows the same log, in the order typed.
    sent: list[str] = []
    for n in range(6):
        text = f"turn {n} from page {n % 3 + 1}"
        say(lobby[n % 3], text)
        sent.append(text)
        expect_log(lobby, sent)

    # All at once: each message once everywhere, each page's messages in their order.
    burst = [f"burst {n} from page {i + 1}" for n in range(5) for i in range(3)]
    for n, text in enumerate(burst):
        say(lobby[n % 3], text)
    say(other, "only in the other room")
    for page in lobby:
        expect(messages(page)).to_have_count(len(sent) + len(burst), timeout=WAIT_MS)
    time.sleep(1)  # Late duplicates would show up now.
    for page in lobby:
        log = messages(page).all_inner_texts()
        assert log[: len(sent)] == sent
        assert sorted(log[len(sent) :]) == sorted(burst)
        for i in range(3):
            mine = [t for t in log if t.endswith(f"from page {i + 1}") and t.startswith("burst")]
            assert mine == [t for t in burst if t.endswith(f"from page {i + 1}")]
    expect_log([other], ["only in the other room"])


def test_messages_reach_every_page_of_the_room_once_in_order(chat: Chat) -> None:
    """Three pages of a room on two processes, and a page of another room."""
    lobby = [chat.open(0), chat.open(1), chat.open(1)]
    other = chat.open(0, "other")
    expect_count(lobby, 3)
    expect_count([other], 1)

    exchange_in_lobby(lobby, other)


def test_room_count_follows_pages_closing(chat: Chat) -> None:
    """The count drops as pages close and rises as one opens."""
    first, second, third = chat.open(0), chat.open(1), chat.open(0)
    expect_count([first, second, third], 3)
    third.close()
    expect_count([first, second], 2)
    second.close()
    expect_count([first], 1)
    expect_count([chat.open(1)], 2)
    expect_count([first], 2)


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
def test_pages_survive_a_chanlayer_restart(chat: Chat, kill: bool) -> None:
    """The chanlayer server restarts mid-conversation; the conversation goes on."""
    pages = [chat.open(0), chat.open(1), chat.open(1)]
    expect_count(pages, 3)
    say(pages[0], "before the restart")
    expect_log(pages, ["before the restart"])

    chat.chanlayer.restart(kill=kill)

    # The WebSockets never closed: the gateways resumed their sessions with the new server.
    for page in pages:
        expect(page.locator("#status")).to_have_text("connected")
    # The new server started empty; every connection renews its membership periodically.
    wait_for(lambda: chat.chanlayer.group_size("chat_lobby") == 3, 15, "the room is not back")
    expect_count(pages, 3)
    say(pages[1], "after the restart")
    say(pages[2], "still here")
    expect_log(pages, ["before the restart", "after the restart", "still here"])


def test_killed_gateway_leaves_the_room_after_the_lease(chat: Chat) -> None:
    """A SIGKILLed daphne's connection leaves the room when its lease runs out."""
    survivors = [chat.open(0), chat.open(0)]
    doomed = chat.open(1)
    expect_count([*survivors, doomed], 3)

    chat.daphnes[1].stop(kill=True)
    killed_at = time.monotonic()
    expect(doomed.locator("#status")).to_have_text("disconnected", timeout=WAIT_MS)
    # Nobody left the group: the dead process's membership stays until its lease runs out.
    size = chat.chanlayer.group_size("chat_lobby")
    if time.monotonic() - killed_at < LEASE_GRACE_MS / 1000:
        assert size == 3
    expect_count(survivors, 2, timeout=LEASE_GRACE_MS + WAIT_MS)
    assert time.monotonic() - killed_at >= LEASE_GRACE_MS / 1000 * 0.9

    for page in survivors:
        expect(page.locator("#status")).to_have_text("connected")
    say(survivors[1], "two of us left")
    expect_log(survivors, ["two of us left"])


def test_screenshot_of_two_pages_side_by_side(chat: Chat) -> None:
    """Two pages on two processes, as the README shows them: ``chat.png``."""
    from PIL import Image

    left, right = chat.open(0), chat.open(1)
    expect_count([left, right], 2)
    conversation = [
        (left, "Hi! Is anyone in the lobby?"),
        (right, "Hello from the other daphne process."),
        (left, "Both of us go through one chanlayer server."),
        (right, "And the count up there comes from its group size."),
    ]
    for n, (page, text) in enumerate(conversation):
        say(page, text)
        expect_log([left, right], [t for _, t in conversation[: n + 1]])
    left.fill("#chat-message-input", "Typing…")

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shots = []
    for name, page in (("left", left), ("right", right)):
        path = ARTIFACTS / f"chat-{name}.png"
        page.screenshot(path=str(path))
        shots.append(Image.open(path).convert("RGB"))
    gap = 16
    width = sum(shot.width for shot in shots) + gap
    height = max(shot.height for shot in shots)
    combined = Image.new("RGB", (width, height), (203, 210, 217))
    combined.paste(shots[0], (0, 0))
    combined.paste(shots[1], (shots[0].width + gap, 0))
    combined.save(ARTIFACTS / "chat.png", optimize=True)
