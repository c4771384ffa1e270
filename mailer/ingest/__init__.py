"""Ingestion: validate events, merge identities, apply them to contacts, carts and orders."""
