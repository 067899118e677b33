"""Commands of the `needlepoint` CLI that live in modules of their own (each registered
in `cli.py` with one line)."""
