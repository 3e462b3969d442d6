"""End-to-end tests of the chat example: real servers, a real browser, real WebSockets."""
