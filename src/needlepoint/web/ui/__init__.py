"""Server-rendered pages, one router module per area (registered in `web/app.py`)."""
