"""The chat app: pages, the WebSocket consumer, and its routing."""

#: A room name in URLs: the characters a Channels group name allows, short enough that
#: ``chat_<room>`` stays under the 100-character limit of group names.
ROOM_NAME_PATTERN = r"(?P<room_name>[A-Za-z0-9_.-]{1,80})"


def room_group_name(room_name: str) -> str:
    """Return the channel-layer group of a room: ``chat_<room>``, as in the tutorial."""
    return f"chat_{room_name}"
