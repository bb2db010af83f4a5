"""The interactive API docs at ``/docs``: Swagger UI from a pinned Python package, served by the
app itself under a strict Content-Security-Policy. Nothing on the page comes from elsewhere."""
