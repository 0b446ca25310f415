"""Items: the example domain, with full CRUD."""
