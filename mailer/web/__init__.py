"""The web layer: the only place (with tasks/ and cli.py) that imports Flask."""
