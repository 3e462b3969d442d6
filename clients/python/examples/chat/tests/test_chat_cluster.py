"""The chat example across two chanlayer nodes joined by a 3-server NATS cluster.

Daphne A uses node A and daphne B uses node B, each node on its own NATS server: a room's
pages on both processes see every message, and the room count (the group's size, answered
for the whole cluster) counts every page.
"""

from __future__ import annotations

from PIL import Image
from playwright.sync_api import Page

from .conftest import ARTIFACTS, ClusterChat, wait_for
from .test_chat_e2e import exchange_in_lobby, expect_count, expect_log, say


def test_every_message_reaches_every_page_on_both_nodes(cluster_chat: ClusterChat) -> None:
    """Two pages on daphne A (node A), one on daphne B (node B), and another room on B."""
    lobby = [cluster_chat.open(0), cluster_chat.open(0), cluster_chat.open(1)]
    other = cluster_chat.open(1, "other")
    expect_count(lobby, 3)
    expect_count([other], 1)
    for node in cluster_chat.nodes:
        assert node.group_size("chat_lobby") == 3

    exchange_in_lobby(lobby, other)

    screenshot(lobby, "chat-cluster")


def test_room_count_follows_pages_on_either_node(cluster_chat: ClusterChat) -> None:
    """Pages closing on one node lower the count shown on the other, and a new page raises it."""
    on_a, on_b, second_on_b = cluster_chat.open(0), cluster_chat.open(1), cluster_chat.open(1)
    expect_count([on_a, on_b, second_on_b], 3)
    second_on_b.close()
    expect_count([on_a, on_b], 2)
    on_a.close()
    expect_count([on_b], 1)
    wait_for(
        lambda: cluster_chat.nodes[0].group_size("chat_lobby") == 1, 10, "A still counts its page"
    )
    back_on_a = cluster_chat.open(0)
    expect_count([on_b, back_on_a], 2)
    say(on_b, "from B")
    expect_log([on_b, back_on_a], ["from B"])
    say(back_on_a, "from A")
    expect_log([on_b, back_on_a], ["from B", "from A"])


def screenshot(pages: list[Page], name: str) -> None:
    """Save each page and ``<name>.png``, the pages side by side, in the artefact directory."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shots = []
    for n, page in enumerate(pages):
        path = ARTIFACTS / f"{name}-{n + 1}.png"
        page.bring_to_front()
        page.screenshot(path=str(path))
        shots.append(Image.open(path).convert("RGB"))
    gap = 16
    width = sum(shot.width for shot in shots) + gap * (len(shots) - 1)
    combined = Image.new("RGB", (width, max(shot.height for shot in shots)), (203, 210, 217))
    left = 0
    for shot in shots:
        combined.paste(shot, (left, 0))
        left += shot.width + gap
    combined.save(ARTIFACTS / f"{name}.png", optimize=True)
