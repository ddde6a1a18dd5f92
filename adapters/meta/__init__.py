"""Pieces shared by Meta's channels (WhatsApp Cloud API, Messenger, Instagram)."""
