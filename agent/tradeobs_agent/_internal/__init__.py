"""Private implementation modules. Nothing here is public API."""
